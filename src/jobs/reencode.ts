/**
 * @module jobs/reencode
 * Fast now, small later (issue 16). A variant produced on demand is encoded at a fast speed so
 * its first viewer waits little; once one isolate has seen it REENCODE_MIN_REQUESTS times, the
 * queue re-encodes it here at a slow speed with the quality calibrated for that speed (same
 * perceived-quality target), and replaces the R2 object, then purges the edge cache, only when
 * the new bytes are smaller and score no lower SSIM against the very pixels both were encoded
 * from. Either way the stored variant is marked, so it is never re-encoded twice.
 */
import { backgroundFor, type Config } from "../config";
import { formatSpec } from "../formats";
import { backgroundShare, isolateGate } from "../produce/admission";
import { Production, ProductionError, type Timer } from "../produce/pipeline";
import { retriedInBackground } from "../produce/verdicts";
import { meanSsim } from "../produce/ssim";
import type { VariantCache } from "../storage/cache";
import { strongEtag } from "../storage/etag";
import { dropIfSourceChanged } from "../storage/freshness";
import type { Storage } from "../storage/r2";
import { cacheKeyUrl, parseImageKey } from "../variants/key";

/**
 * SSIM differences below this are measurement noise, not a loss: the calibration's slow and
 * fast encoders at their matched qualities differ per image by about this much either way.
 */
export const SSIM_TOLERANCE = 0.0005;

/** What became of a variant (logged by the consumer; `kept` and `replaced` are also its R2 mark). */
export type ReencodeOutcome =
  | { result: "replaced"; before: number; after: number; ssimBefore: number; ssimAfter: number }
  | { result: "kept"; reason: string }
  | { result: "skipped"; reason: string };

const untimed: Timer = { time: (_stage, fn) => fn() };

export interface ReencodeDeps {
  config: Config;
  store: Storage;
  cache: VariantCache;
}

/**
 * Re-encodes the stored variant `key` (one queue message). Throws on a temporary failure (R2,
 * a full isolate) so the queue retries it.
 */
export async function reencode(deps: ReencodeDeps, key: string, origin: string): Promise<ReencodeOutcome> {
  const { config, store, cache } = deps;
  const req = parseImageKey(key, Number.MAX_SAFE_INTEGER);
  let settings = config.reencode.encode[req.format];
  if (!settings) return { result: "skipped", reason: `${req.format} is not in REENCODE_FORMATS` };
  const head = await store.head(key);
  const meta = head?.customMetadata ?? {};
  // Only the worker's own fast encodes: an origin's variant is the origin's to choose.
  if (!head || meta.producedBy !== "on-demand") return { result: "skipped", reason: "not an on-demand variant" };
  if (meta.reencoded) return { result: "skipped", reason: `already ${meta.reencoded}` };
  const stored = await store.get(key);
  if (!stored) return { result: "skipped", reason: "gone" };
  // A fast encode whose quality was chosen per image (produce/perceptual) moved away from the
  // calibrated one by what the image needs: the slow encode moves by as much, so it aims at
  // the same perceived quality (at a fixed quality it came out larger, and was kept, wherever
  // the search had gone lower).
  const moved = Number(meta.quality) - config.encode[req.format].quality;
  if (config.encode[req.format].target !== undefined && Number.isFinite(moved) && moved !== 0) {
    settings = { ...settings, quality: Math.max(1, Math.min(100, settings.quality + moved)) };
  }

  const mark = async (outcome: ReencodeOutcome & { result: "kept" }): Promise<ReencodeOutcome> => {
    // Same bytes, so the same ETag for clients; only the mark is new. Conditional on the object
    // being the one judged: anything stored meanwhile is left alone.
    await store.put(key, stored.bytes, { contentType: formatSpec(req.format).mime, customMetadata: { ...meta, reencoded: "kept", reencodeNote: outcome.reason }, onlyIf: new Headers({ "If-Match": head.etag }) });
    // Cache entries still say "provisional": refilled from R2, they will not count views again.
    await cache.delete(cacheKeyUrl(origin, config.cacheGeneration, req.stem, req.size, req.format));
    return outcome;
  };

  const sourceKey = meta.sourceKey;
  if (!sourceKey) return { result: "skipped", reason: "no source recorded" };
  const ticket = isolateGate(config.memoryBudgetBytes, config.memoryReleaseMs).ticket("background");
  // The original is held whole while decoded: reserved in the memory gate before it is read.
  const production = new Production(() => store.get(sourceKey, ticket.readRoom(() => config.admissionWaitMs)), req.size, { maxSourcePixels: config.maxSourcePixels, maxAnimationFrames: config.maxAnimationFrames, background: backgroundFor(config, req.size), memoryBudgetBytes: config.memoryBudgetBytes }, untimed);
  try {
    const { image, plan } = await production.source();
    // A variant of an older original is stale, not improvable: written back after the purge of
    // the original's replacement, it is dropped here (storage/freshness).
    if (meta.sourceEtag && meta.sourceEtag !== image.etag) {
      await dropIfSourceChanged(store, cache, { sourceKey, sourceEtag: meta.sourceEtag, cacheUrls: [cacheKeyUrl(origin, config.cacheGeneration, req.stem, req.size, req.format)], r2Key: key });
      return { result: "skipped", reason: "the original changed since: the stale variant is dropped" };
    }
    // The production, then two decodes at output size to compare (each instance stays alive
    // until collected, like every retired codec memory).
    const pixelsOut = plan.width * plan.height;
    // (WebP's decoder, our libwebp build at full size: its file copy and RGBA, bounded by 32 MB at re-encode sizes.)
    const verify = 2 * (formatSpec(req.format).cost.decodeMemory?.(pixelsOut) ?? 32e6) + 8 * pixelsOut;
    // A re-encode is an improvement, never owed: one that would need more than background work
    // may hold beside requests (the thumbnail of a 24 MP progressive photo: its coefficients,
    // the slow encoder and two verification decodes, 60-107 MiB) would run only when the
    // isolate is idle, and was retried behind every other message of the queue meanwhile (the
    // soak: async jobs still queued two minutes after the traffic stopped). It keeps its fast
    // encode instead. Nor does it wait for room: every view of a thumbnail may queue one, and
    // the consumer takes one message at a time, so a second of waiting each let them pile up
    // ahead of the async jobs (the soak again: ~490 in 10 minutes).
    const bytes = await production.produce(ticket, req.format, settings, { memoryBytes: backgroundShare(config.memoryBudgetBytes) - verify, cpuMs: config.backgroundCpuBudgetMs, waitMs: 0, extraBytes: verify });
    if (bytes.byteLength >= stored.bytes.byteLength) return await mark({ result: "kept", reason: `not smaller: ${bytes.byteLength} bytes vs ${stored.bytes.byteLength}` });
    const reference = await production.pixels();
    const ssimBefore = meanSsim(reference, await production.codecs.decode(req.format, stored.bytes));
    const ssimAfter = meanSsim(reference, await production.codecs.decode(req.format, bytes));
    if (ssimAfter < ssimBefore - SSIM_TOLERANCE) return await mark({ result: "kept", reason: `lower quality: SSIM ${ssimAfter.toFixed(4)} vs ${ssimBefore.toFixed(4)}` });
    const etag = await strongEtag(bytes);
    const replaced = await store.put(key, bytes, {
      contentType: formatSpec(req.format).mime,
      customMetadata: {
        ...meta,
        etag,
        quality: String(settings.quality),
        speed: String(settings.speed),
        reencoded: "replaced",
        reencodeNote: `${stored.bytes.byteLength} -> ${bytes.byteLength} bytes, SSIM ${ssimBefore.toFixed(4)} -> ${ssimAfter.toFixed(4)}`,
      },
      onlyIf: new Headers({ "If-Match": head.etag }),
    });
    if (!replaced) return { result: "skipped", reason: "the stored variant changed meanwhile" };
    // This colo's entry goes; the next request reads the new bytes from R2 (and caches them).
    await cache.delete(cacheKeyUrl(origin, config.cacheGeneration, req.stem, req.size, req.format));
    return { result: "replaced", before: stored.bytes.byteLength, after: bytes.byteLength, ssimBefore, ssimAfter };
  } catch (e) {
    // No room now: skipped, not retried (the queue's next messages, async jobs among them, go
    // first); a later view in this or another isolate may queue it again.
    if (e instanceof ProductionError && e.verdict === "admission-timeout") return { result: "skipped", reason: `no room now: ${e.message}` };
    if (!(e instanceof ProductionError) || retriedInBackground(e.verdict)) throw e;
    // A source that cannot be decoded or encoded now will not be later either; nor will one
    // predicted over the background's budgets.
    return await mark({ result: "kept", reason: `${e.verdict}: ${e.message}` });
  } finally {
    ticket.release();
  }
}
