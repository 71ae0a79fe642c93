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
  /** The object's custom metadata (who produced it, how), when read from R2. */
  metadata?: Record<string, string>;
}

/**
 * Room to hold an object whole, asked with its length once R2 has found it, before its body is
 * read: a reader that holds the whole object reserves its memory here (produce/admission), so
 * concurrent reads of large objects wait for room instead of each taking it (issue 30: 30
 * concurrent reads of a 24.6 MB original, RSS +1,348 MiB). `now` takes room if there is some at
 * once; `wait` waits for it (and throws when it does not come in time).
 */
export interface ReadRoom {
  now(bytes: number): boolean;
  wait(bytes: number): Promise<void>;
}

/**
 * An object opened for serving: its body whole when it is at most `holdUpTo` bytes (one native
 * read), else a stream never held whole; `head`, its first bytes, either way.
 */
export interface OpenedObject {
  info: ObjectInfo;
  head: Uint8Array;
  body: ArrayBuffer | ReadableStream<Uint8Array>;
}

/**
 * Thrown by `findOriginal` when an original exists but may not be stored or served (the pull-through
 * origin's file is not an image, or is over the upload limits): final, unlike a storage fault.
 * Its message is safe to show a client.
 */
export class SourceRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SourceRejected";
  }
}

export interface ImageStore {
  get(key: string, room?: ReadRoom): Promise<StoredImage | null>;
  /**
   * The full-size object of `stem` to transcode from: `preferredKey` when it exists, else the
   * stored `<stem>.<ext>` whose format ranks best as a source (lossless first); with a
   * pull-through origin (storage/origin), else the origin's. Throws SourceRejected when the
   * original found may not be used, and any other error when storage or the origin failed.
   */
  findOriginal(stem: string, preferredKey: string, room?: ReadRoom): Promise<StoredImage | null>;
  /**
   * The object, whole when it is at most `holdUpTo` bytes, else as a stream whose first
   * `headBytes` are read; null when absent, or when `etag` is given and the object is no
   * longer that version.
   */
  open(key: string, o: { headBytes: number; holdUpTo?: number; etag?: string }): Promise<OpenedObject | null>;
  /** Stores `bytes` under `key` unless an object is already there; never overwrites. */
  putIfAbsent(key: string, bytes: ArrayBuffer, contentType: string, meta: Record<string, string>): Promise<boolean>;
  /**
   * Notes in R2 that a variant of `stem` was produced on demand and put in the edge cache, so
   * that replacing the stem's original can find and purge it (the Cache API cannot list).
   */
  recordCached(stem: string, size: Size | null, format: FormatId): Promise<void>;
  head(key: string): Promise<ObjectInfo | null>;
  delete(keys: string[]): Promise<void>;
}

/** What the origin API and jobs see of a stored object (R2's own types stay in this module). */
export interface ObjectInfo {
  key: string;
  /** Length in bytes. */
  bytes: number;
  /** R2's strong ETag, quoted. */
  etag: string;
  uploaded: Date;
  contentType?: string;
  customMetadata: Record<string, string>;
}

/** A stored object of some stem, as the push API and the purge see it. */
export interface StemObject extends ObjectInfo {
  size: Size | null;
  format: FormatId;
}

export interface PutOptions {
  contentType: string;
  customMetadata?: Record<string, string>;
  /** R2 conditional put (If-Match / If-None-Match): the put is refused, and null returned, when it fails. */
  onlyIf?: Headers;
}

/**
 * Every R2 access of the worker: delivery's (`ImageStore`), the origin API's, the purge's and
 * the jobs'. One injected object, so a fault-injecting wrapper around the binding reaches all
 * of it and nothing else touches the bucket.
 */
export interface Storage extends ImageStore {
  /** The first `length` bytes of an object (a header probe), or null when absent. */
  readStart(key: string, length: number): Promise<Uint8Array | null>;
  readText(key: string): Promise<string | null>;
  /** Null when `onlyIf` failed: nothing was written. */
  put(key: string, body: ArrayBuffer | Uint8Array | string, options: PutOptions): Promise<ObjectInfo | null>;
  /** Objects named `<stem>.<ext>` or `<stem>_W_H.<ext>` exactly: full-size first, then variants, each in key order. */
  listStem(stem: string): Promise<StemObject[]>;
  /** Variants of `stem` recorded by `recordCached`, with the index keys that record them. */
  cachedVariants(stem: string): Promise<{ indexKey: string; size: Size | null; format: FormatId }[]>;
}

const info = (o: R2Object): ObjectInfo => ({
  key: o.key,
  bytes: o.size,
  etag: o.httpEtag,
  uploaded: o.uploaded,
  contentType: o.httpMetadata?.contentType,
  customMetadata: o.customMetadata ?? {},
});

/** Where the purge index lives: one empty object per cached on-demand variant. */
const CACHED_INDEX = "_cdn/cached/";
/** R2's longest key, in UTF-8 bytes. */
const R2_KEY_BYTES = 1024;
/** The longest size suffix and extension of a variant: `_16383_16383.avif`. */
const LONGEST_VARIANT_SUFFIX = 17;

/**
 * The purge index's prefix for `stem`'s variants. A stem too long for `_cdn/cached/<variant>` to
 * fit R2's 1,024 bytes (a key may be up to 1,012 bytes) is indexed under its SHA-256 instead, so
 * that its cached variants are purged too; every variant of a stem is indexed the same way.
 * Variants under the prefix are named as if their stem were "v".
 */
async function indexPrefix(stem: string): Promise<{ prefix: string; stem: string }> {
  const plain = `${CACHED_INDEX}${stem}`;
  if (new TextEncoder().encode(plain).length + LONGEST_VARIANT_SUFFIX <= R2_KEY_BYTES) return { prefix: CACHED_INDEX, stem };
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(stem)));
  const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { prefix: `${CACHED_INDEX}~sha256/${hex}/`, stem: "v" };
}

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

async function listStem(bucket: R2Bucket, stem: string): Promise<StemObject[]> {
  const found: StemObject[] = [];
  for (const prefix of [`${stem}.`, `${stem}_`]) {
    for (const o of await listAll(bucket, prefix, ["customMetadata", "httpMetadata"])) {
      const parsed = tryParse(o.key);
      if (!parsed || parsed.stem !== stem) continue;
      found.push({ ...info(o), size: parsed.size, format: parsed.format });
    }
  }
  // Full-size objects first, then variants; each group in byte order of the key.
  return found.sort((a, b) => Number(!!a.size) - Number(!!b.size) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

async function cachedVariants(bucket: R2Bucket, stem: string): Promise<{ indexKey: string; size: Size | null; format: FormatId }[]> {
  const out = [];
  const index = await indexPrefix(stem);
  for (const o of await listAll(bucket, `${index.prefix}${index.stem}`)) {
    const parsed = tryParse(o.key.slice(index.prefix.length));
    if (parsed && parsed.stem === index.stem) out.push({ indexKey: o.key, size: parsed.size, format: parsed.format });
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

/**
 * Whether a stored full-size object is an original: pushed by the origin (or stored before
 * `producedBy` existed), not the worker's own write-back or a job's output. A full-size AVIF
 * written back after a view of a HEIC must never become the source of the next size: it is
 * lossy (generation loss) and, decoded whole, far costlier than the HEIC's tiles.
 */
const isOriginal = (meta: Record<string, string> | undefined): boolean => meta?.producedBy === undefined || meta.producedBy === "origin";

export function r2Store(bucket: R2Bucket): Storage {
  const get = async (key: string, room?: ReadRoom): Promise<StoredImage | null> => {
    let obj = await bucket.get(key);
    if (!obj) return null;
    if (room && !room.now(obj.size)) {
      // No body is left open while its reader waits for room (up to ADMISSION_WAIT_MS): an
      // unread R2 stream per waiting request would hold its connection all that time. Read
      // again once there is room: one more R2 read, only when reads contend.
      await obj.body.cancel();
      await room.wait(obj.size);
      obj = await bucket.get(key);
      if (!obj) return null;
    }
    // A written-back variant keeps the ETag it was first served with (its content hash), so a
    // client's validator stays good whichever tier serves it next.
    return { key, bytes: await obj.arrayBuffer(), etag: obj.customMetadata?.etag ?? obj.httpEtag, metadata: obj.customMetadata ?? {} };
  };
  return {
    get,
    async findOriginal(stem, preferredKey, room) {
      const preferred = await get(preferredKey, room);
      if (preferred && isOriginal(preferred.metadata)) return preferred;
      // One list call finds every full-size sibling; `<stem>.` cannot match size variants
      // (`<stem>_W_H.ext`), and anything after the dot other than a bare extension is ignored.
      const listed = await bucket.list({ prefix: `${stem}.`, limit: 100, include: ["customMetadata"] });
      const originals = listed.objects
        .filter((o) => isOriginal(o.customMetadata))
        .map((o) => ({ key: o.key, spec: formatFromExtension(o.key.slice(stem.length + 1)) }))
        .filter((o): o is { key: string; spec: FormatSpec } => !!o.spec && o.key !== preferredKey)
        .sort((a, b) => a.spec.sourceRank - b.spec.sourceRank);
      for (const o of originals) {
        if (!o.spec.canDecode) continue;
        const found = await get(o.key, room);
        if (found && isOriginal(found.metadata)) return found;
      }
      return null;
    },
    async open(key, { headBytes, holdUpTo = 0, etag }) {
      const obj = await bucket.get(key, etag ? { onlyIf: { etagMatches: etag.replace(/"/g, "") } } : undefined);
      if (!obj || !("body" in obj)) return null;
      if (obj.size <= holdUpTo) {
        const bytes = await obj.arrayBuffer();
        return { info: info(obj), head: new Uint8Array(bytes, 0, Math.min(headBytes, bytes.byteLength)), body: bytes };
      }
      if (headBytes === 0) return { info: info(obj), head: new Uint8Array(0), body: obj.body };
      // The first bytes are read to look at them, then handed on ahead of the rest.
      const reader = obj.body.getReader();
      const chunks: Uint8Array[] = [];
      let got = 0;
      while (got < Math.min(headBytes, obj.size)) {
        const r = await reader.read();
        if (r.done) break;
        chunks.push(r.value);
        got += r.value.byteLength;
      }
      const head = new Uint8Array(got);
      chunks.reduce((at, c) => (head.set(c, at), at + c.byteLength), 0);
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          if (head.byteLength) c.enqueue(head);
        },
        async pull(c) {
          const r = await reader.read();
          if (r.done) c.close();
          else c.enqueue(r.value);
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return { info: info(obj), head: head.subarray(0, headBytes), body };
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
      const index = await indexPrefix(stem);
      await bucket.put(`${index.prefix}${variantKey(index.stem, size, format)}`, null);
    },
    async head(key) {
      const o = await bucket.head(key);
      return o ? info(o) : null;
    },
    async readStart(key, length) {
      const o = await bucket.get(key, { range: { offset: 0, length } });
      return o ? new Uint8Array(await o.arrayBuffer()) : null;
    },
    async readText(key) {
      const o = await bucket.get(key);
      return o ? o.text() : null;
    },
    async put(key, body, o) {
      const stored = await bucket.put(key, body, { httpMetadata: { contentType: o.contentType }, customMetadata: o.customMetadata, onlyIf: o.onlyIf });
      return stored ? info(stored) : null;
    },
    async delete(keys) {
      // R2's delete takes at most 1000 keys per call.
      for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000));
    },
    listStem: (stem) => listStem(bucket, stem),
    cachedVariants: (stem) => cachedVariants(bucket, stem),
  };
}
