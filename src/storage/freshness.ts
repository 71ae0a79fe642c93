/**
 * @module storage/freshness
 * What was made from an original must not outlive it. A production reads the original, works
 * for a while, then writes its result (an edge-cache entry, a written-back variant in R2); an
 * origin that replaces the original meanwhile purges what exists at its PUT, but not a result
 * written after it: that result would be served, stale, until its TTL (issue 30: 1 of 8 WebP
 * variants and 2 of 8 AVIFs in every run). So each write from an original is checked after it
 * lands: when the original's ETag is no longer the one the production read, the write is
 * undone. Either the check sees the new original (and undoes the write), or it ran before the
 * replacement, and then so did the write, and the PUT's purge finds it: nothing stale survives.
 * One R2 head per production (a class B operation), in the background.
 */
import type { VariantCache } from "./cache";
import type { ImageStore } from "./r2";

export interface MadeFrom {
  /** The original the result was made from, and its ETag when it was read. */
  sourceKey: string;
  sourceEtag: string;
  /** Edge-cache entries holding the result. */
  cacheUrls: string[];
  /** The R2 object holding the result (its metadata names `sourceEtag`), if one was written. */
  r2Key?: string;
}

/** Undoes the writes of a result whose original has changed since; true when it did. */
export async function dropIfSourceChanged(store: Pick<ImageStore, "head" | "delete">, cache: VariantCache, made: MadeFrom): Promise<boolean> {
  const now = await store.head(made.sourceKey);
  if (now?.etag === made.sourceEtag) return false;
  await Promise.all(made.cacheUrls.map((u) => cache.delete(u)));
  if (made.r2Key) {
    // Only our own stale write: a newer result (made from the new original) is left alone.
    const stored = await store.head(made.r2Key);
    if (stored?.customMetadata.sourceEtag === made.sourceEtag) await store.delete([made.r2Key]);
  }
  return true;
}
