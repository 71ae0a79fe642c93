/**
 * @module storage/r2
 * The R2 side of the lookup chain: pre-produced variants, originals, and write-back of
 * on-demand results. Takes the bucket binding, never `env`.
 */
import { formatFromExtension, type FormatSpec } from "../formats";

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
}

export function r2Store(bucket: R2Bucket): ImageStore {
  const get = async (key: string): Promise<StoredImage | null> => {
    const obj = await bucket.get(key);
    if (!obj) return null;
    return { key, bytes: await obj.arrayBuffer(), etag: obj.httpEtag };
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
  };
}
