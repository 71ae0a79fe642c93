/**
 * @module storage/r2
 * The R2 side of the lookup chain: pre-produced variants, originals, and write-back of
 * on-demand results. Takes the bucket binding, never `env`.
 */
import { formatFromExtension, type FormatSpec } from "../formats";
import { parseImageKey, variantKey, type Size } from "../variants/key";
import type { FormatId } from "../formats";

export interface StoredImage {
  key: string;
  bytes: ArrayBuffer;
  /** R2's own strong ETag, quoted (RFC 9110 8.8.3). */
  etag: string;
}

export interface ImageStore {
  get(key: string): Promise<StoredImage | null>;
  /**
   * The full-size object of `stem` to transcode from: `preferredKey` when it exists, else the
   * stored `<stem>.<ext>` whose format ranks best as a source (lossless first).
   */
  findOriginal(stem: string, preferredKey: string): Promise<StoredImage | null>;
  /** Stores `bytes` under `key` unless an object is already there; never overwrites. */
  putIfAbsent(key: string, bytes: ArrayBuffer, contentType: string, meta: Record<string, string>): Promise<boolean>;
  /**
   * Notes in R2 that a variant of `stem` was produced on demand and put in the edge cache, so
   * that replacing the stem's original can find and purge it (the Cache API cannot list).
   */
  recordCached(stem: string, size: Size | null, format: FormatId): Promise<void>;
}

/** A stored object of some stem, as the push API and the purge see it. */
export interface StemObject {
  key: string;
  size: Size | null;
  format: FormatId;
  bytes: number;
  etag: string;
  customMetadata: Record<string, string>;
  /** The listing's own entry (with custom and HTTP metadata), for callers that describe it. */
  object: R2Object;
}

/** Where the purge index lives: one empty object per cached on-demand variant. */
const CACHED_INDEX = "_cdn/cached/";

async function listAll(bucket: R2Bucket, prefix: string, include: ("customMetadata" | "httpMetadata")[] = []): Promise<R2Object[]> {
  const out: R2Object[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor, include });
    out.push(...page.objects);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out;
}

/** Objects named `<stem>.<ext>` or `<stem>_W_H.<ext>` exactly (not `<stem>x...`). */
export async function listStem(bucket: R2Bucket, stem: string): Promise<StemObject[]> {
  const found: StemObject[] = [];
  for (const prefix of [`${stem}.`, `${stem}_`]) {
    for (const o of await listAll(bucket, prefix, ["customMetadata", "httpMetadata"])) {
      const parsed = tryParse(o.key);
      if (!parsed || parsed.stem !== stem) continue;
      found.push({ key: o.key, size: parsed.size, format: parsed.format, bytes: o.size, etag: o.httpEtag, customMetadata: o.customMetadata ?? {}, object: o });
    }
  }
  // Full-size objects first, then variants; each group in byte order of the key.
  return found.sort((a, b) => Number(!!a.size) - Number(!!b.size) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Variants of `stem` recorded by `recordCached`, with the index keys that record them. */
export async function cachedVariants(bucket: R2Bucket, stem: string): Promise<{ indexKey: string; size: Size | null; format: FormatId }[]> {
  const out = [];
  for (const o of await listAll(bucket, `${CACHED_INDEX}${stem}`)) {
    const parsed = tryParse(o.key.slice(CACHED_INDEX.length));
    if (parsed && parsed.stem === stem) out.push({ indexKey: o.key, size: parsed.size, format: parsed.format });
  }
  return out;
}

function tryParse(key: string) {
  try {
    return parseImageKey(key, Number.MAX_SAFE_INTEGER);
  } catch {
    return null;
  }
}

export function r2Store(bucket: R2Bucket): ImageStore {
  const get = async (key: string): Promise<StoredImage | null> => {
    const obj = await bucket.get(key);
    if (!obj) return null;
    // A written-back variant keeps the ETag it was first served with (its content hash), so a
    // client's validator stays good whichever tier serves it next.
    return { key, bytes: await obj.arrayBuffer(), etag: obj.customMetadata?.etag ?? obj.httpEtag };
  };
  return {
    get,
    async findOriginal(stem, preferredKey) {
      const preferred = await get(preferredKey);
      if (preferred) return preferred;
      // One list call finds every full-size sibling; `<stem>.` cannot match size variants
      // (`<stem>_W_H.ext`), and anything after the dot other than a bare extension is ignored.
      const listed = await bucket.list({ prefix: `${stem}.`, limit: 100 });
      const originals = listed.objects
        .map((o) => ({ key: o.key, spec: formatFromExtension(o.key.slice(stem.length + 1)) }))
        .filter((o): o is { key: string; spec: FormatSpec } => !!o.spec && o.key !== preferredKey)
        .sort((a, b) => a.spec.sourceRank - b.spec.sourceRank);
      for (const o of originals) {
        if (!o.spec.canDecode) continue;
        const found = await get(o.key);
        if (found) return found;
      }
      return null;
    },
    async putIfAbsent(key, bytes, contentType, meta) {
      // head-then-put leaves a window in which an origin's push could land first and be
      // overwritten; R2's conditional put closes it (If-None-Match: * semantics).
      const res = await bucket.put(key, bytes, {
        httpMetadata: { contentType },
        customMetadata: meta,
        onlyIf: new Headers({ "If-None-Match": "*" }),
      });
      return res !== null;
    },
    async recordCached(stem, size, format) {
      await bucket.put(`${CACHED_INDEX}${variantKey(stem, size, format)}`, null);
    },
  };
}
