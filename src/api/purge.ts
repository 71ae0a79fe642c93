/**
 * @module api/purge
 * What a changed object makes stale. A variant object stales only its own cache entry; a
 * full-size object may be the original of every on-demand variant of its stem, so those cache
 * entries (found through the R2 purge index) and the AVIFs written back to R2 from it go too.
 */
import type { VariantCache } from "../storage/cache";
import type { Storage } from "../storage/r2";
import { cacheKeyUrl, type ImageRequestKey } from "../variants/key";

export async function purgeStale(
  store: Storage,
  cache: VariantCache,
  origin: string,
  generation: string,
  changed: ImageRequestKey,
): Promise<void> {
  const urls = [cacheKeyUrl(origin, generation, changed.stem, changed.size, changed.format)];
  const r2Deletes: string[] = [];
  if (!changed.size) {
    for (const v of await store.cachedVariants(changed.stem)) {
      // The first-frame still of an animated original too (deliver/chain), if any.
      const url = cacheKeyUrl(origin, generation, changed.stem, v.size, v.format);
      // And a placeholder made from it (deliver/placeholder: `?thumbhash` beside its variant).
      urls.push(url, cacheKeyUrl(origin, generation, changed.stem, v.size, v.format, true), `${url}?thumbhash`);
      r2Deletes.push(v.indexKey);
    }
    for (const o of await store.listStem(changed.stem)) {
      if (o.key !== changed.key && o.customMetadata.producedBy === "on-demand") {
        urls.push(cacheKeyUrl(origin, generation, changed.stem, o.size, o.format));
        r2Deletes.push(o.key);
      }
    }
  }
  await Promise.all([...new Set(urls)].map((u) => cache.delete(u)));
  if (r2Deletes.length) await store.delete(r2Deletes);
}
