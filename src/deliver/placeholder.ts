/**
 * @module deliver/placeholder
 * `?placeholder=thumbhash`: what an app or a page draws while the image loads, as JSON
 * `{ thumbhash, width, height }` (ThumbHash, the `thumbhash` npm package: ~25 bytes that decode
 * to a blurred ~32 px picture with the image's aspect ratio and average colour) and the size the
 * image is shown at. Made from the image resized to fit 100x100 (ThumbHash's input limit), which
 * the row decoders reach cheaply (a JPEG decodes at 1/8 scale); cached like a variant, purged
 * with the original's variants when it is replaced.
 */
import { rgbaToThumbHash } from "thumbhash";
import type { Config } from "../config";
import { AppError } from "../errors";
import { displaySize } from "../headers";
import type { MemoryGate } from "../produce/admission";
import { Production, ProductionError, type Timer } from "../produce/pipeline";
import { isTemporary } from "../produce/verdicts";
import type { VariantCache } from "../storage/cache";
import { strongEtag } from "../storage/etag";
import type { ImageStore } from "../storage/r2";
import { cacheKeyUrl, type ImageRequestKey, type Size } from "../variants/key";
import { RETRY_AFTER_SECONDS } from "./respond";

export interface Placeholder {
  thumbhash: string;
  width: number;
  height: number;
}

/** ThumbHash takes at most 100x100. */
const THUMB: Size = { width: 100, height: 100, fit: "contain" };

export interface PlaceholderDeps {
  config: Config;
  store: ImageStore;
  cache: VariantCache;
  gate: MemoryGate;
  timer: Timer;
  background(task: Promise<unknown>): void;
}

export async function thumbhashPlaceholder(req: ImageRequestKey, origin: string, deps: PlaceholderDeps): Promise<{ body: string; etag: string; cached: boolean }> {
  const { config } = deps;
  // Its own entry beside the 100x100 variant's, which the purge of a replaced original finds.
  const keyUrl = `${cacheKeyUrl(origin, config.cacheGeneration, req.stem, THUMB, "png")}?thumbhash`;
  const hit = await deps.cache.match(keyUrl).catch(() => null);
  if (hit?.body) return { body: await new Response(hit.body).text(), etag: hit.etag, cached: true };
  const ticket = deps.gate.ticket();
  let placeholder: Placeholder;
  try {
    const production = new Production(
      () => deps.store.findOriginal(req.stem, `${req.stem}.${req.extension}`, ticket.readRoom(() => config.admissionWaitMs)),
      THUMB,
      { maxSourcePixels: config.maxSourcePixels, maxAnimationFrames: config.maxAnimationFrames, background: config.flattenBackground, memoryBudgetBytes: config.memoryBudgetBytes },
      deps.timer,
    );
    // Admitted as a PNG job of this size is: the decode and resize are the whole of it.
    await production.assertWithinBudget("png", config.encode.png, { memoryBytes: config.memoryBudgetBytes, cpuMs: config.cpuLimitMs });
    await production.admit(ticket, "png", config.encode.png, config.admissionWaitMs);
    const pixels = await production.pixels();
    const shown = displaySize((await production.source()).header);
    const hash = rgbaToThumbHash(pixels.width, pixels.height, pixels.data);
    placeholder = { thumbhash: btoa(String.fromCharCode(...hash)), width: shown.width, height: shown.height };
  } catch (e) {
    if (!(e instanceof ProductionError)) throw e;
    if (isTemporary(e.verdict)) throw new AppError(503, "temporarily_unavailable", "The placeholder cannot be made right now; try again shortly.", { verdict: e.verdict }, { "Retry-After": String(RETRY_AFTER_SECONDS) });
    if (e.verdict === "no-source") throw new AppError(404, "not_found", "No such image.");
    throw new AppError(422, "no_placeholder", `No placeholder can be made of this image (${e.verdict}).`, { verdict: e.verdict });
  } finally {
    ticket.release();
  }
  const body = JSON.stringify(placeholder);
  const bytes = new TextEncoder().encode(body).buffer as ArrayBuffer;
  const etag = await strongEtag(bytes);
  // Noted in the purge index as its 100x100 variant, so replacing the original purges it.
  deps.background(Promise.all([deps.cache.put(keyUrl, bytes, etag, "application/json; charset=utf-8"), deps.store.recordCached(req.stem, THUMB, "png")]).catch(() => undefined));
  return { body, etag, cached: false };
}
