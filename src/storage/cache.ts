/**
 * @module storage/cache
 * The edge cache (`caches.default`) holding finished variants under canonical keys. Entries
 * carry their own Content-Type, Content-Length and ETag so a hit needs nothing else.
 */

export interface CachedVariant {
  body: ReadableStream | null;
  size: number;
  etag: string;
  contentType: string;
}

export interface VariantCache {
  match(keyUrl: string): Promise<CachedVariant | null>;
  put(keyUrl: string, bytes: ArrayBuffer, etag: string, contentType: string): Promise<void>;
  /** Removes an entry from this data centre's cache (the Cache API is per colo). */
  delete(keyUrl: string): Promise<boolean>;
}

export function edgeCache(cache: Cache, ttlSeconds: number): VariantCache {
  return {
    async match(keyUrl) {
      const res = await cache.match(keyUrl);
      if (!res) return null;
      const etag = res.headers.get("ETag");
      const size = Number(res.headers.get("Content-Length"));
      const contentType = res.headers.get("Content-Type");
      if (!etag || !contentType || !Number.isFinite(size)) {
        // An entry we did not write (or a damaged one) is treated as a miss, not served.
        await res.body?.cancel();
        return null;
      }
      return { body: res.body, size, etag, contentType };
    },
    delete: (keyUrl) => cache.delete(keyUrl),
    async put(keyUrl, bytes, etag, contentType) {
      if (ttlSeconds <= 0) return;
      await cache.put(
        keyUrl,
        new Response(bytes, {
          headers: {
            "Content-Type": contentType,
            "Content-Length": String(bytes.byteLength),
            ETag: etag,
            "Cache-Control": `public, max-age=${ttlSeconds}`,
          },
        }),
      );
    },
  };
}
