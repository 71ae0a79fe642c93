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
  /** A fast on-demand encode that a slower background re-encode may still replace (jobs/reencode). */
  provisional: boolean;
  /**
   * Not an image: a marker saying this variant's source is an animation this format cannot
   * carry, so the request looks for an animated format first and for the still last, without
   * reading the original again (deliver/chain).
   */
  animatedSource: boolean;
}

export interface VariantCache {
  match(keyUrl: string): Promise<CachedVariant | null>;
  /** `bytes`: the whole body, or a stream of `size` bytes (a stored object never held whole). */
  put(keyUrl: string, bytes: ArrayBuffer | { stream: ReadableStream; size: number }, etag: string, contentType: string, provisional?: boolean, animatedSource?: boolean): Promise<void>;
  /** Removes an entry from this data centre's cache (the Cache API is per colo). */
  delete(keyUrl: string): Promise<boolean>;
}

/**
 * Marks an entry whose bytes may still be replaced by a background re-encode, so a hit can
 * count toward it without reading R2 (kept in the cache, never sent to clients: respond.ts
 * builds its own headers).
 */
const PROVISIONAL = "X-Variant-Provisional";
/** See `CachedVariant.animatedSource`. */
const ANIMATED_SOURCE = "X-Variant-Animated-Source";

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
      return { body: res.body, size, etag, contentType, provisional: res.headers.get(PROVISIONAL) === "1", animatedSource: res.headers.get(ANIMATED_SOURCE) === "1" };
    },
    delete: (keyUrl) => cache.delete(keyUrl),
    async put(keyUrl, bytes, etag, contentType, provisional = false, animatedSource = false) {
      const size = bytes instanceof ArrayBuffer ? bytes.byteLength : bytes.size;
      if (ttlSeconds <= 0) {
        if (!(bytes instanceof ArrayBuffer)) await bytes.stream.cancel();
        return;
      }
      await cache.put(
        keyUrl,
        new Response(bytes instanceof ArrayBuffer ? bytes : bytes.stream, {
          headers: {
            "Content-Type": contentType,
            "Content-Length": String(size),
            ETag: etag,
            "Cache-Control": `public, max-age=${ttlSeconds}`,
            ...(provisional ? { [PROVISIONAL]: "1" } : {}),
            ...(animatedSource ? { [ANIMATED_SOURCE]: "1" } : {}),
          },
        }),
      );
    },
  };
}
