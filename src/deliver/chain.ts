/**
 * @module deliver/chain
 * The lookup chain. For each candidate format, best first: edge cache, then a pre-produced
 * variant in R2, then on-demand production; the first that yields bytes wins. Every candidate
 * gets a verdict, reported in X-Image-Tried and, when all fail, in the 404 body.
 */
import type { Config } from "../config";
import { formatSpec, type FormatId } from "../formats";
import { sniffFormat } from "../headers";
import { predictCost } from "../produce/budget";
import { Production, ProductionError, type Timer } from "../produce/pipeline";
import type { VariantCache } from "../storage/cache";
import type { ImageStore } from "../storage/r2";
import { cacheKeyUrl, variantKey, type ImageRequestKey } from "../variants/key";

export type Source = "cache" | "r2" | "transcode";

export interface Verdict {
  format: FormatId;
  /** `hit` | `r2` | `transcode` when served; otherwise why the candidate failed. */
  verdict: string;
}

export interface Delivery {
  format: FormatId;
  source: Source;
  body: ReadableStream | ArrayBuffer | null;
  size: number;
  etag: string;
  /** WASM high-water mark of the production job, when this response was produced. */
  peakWasmBytes?: number;
}

export interface ChainResult {
  delivery: Delivery | null;
  tried: Verdict[];
}

export interface ChainDeps {
  config: Config;
  store: ImageStore;
  cache: VariantCache;
  /** Work that must not delay the response (cache fills, write-back). */
  background(task: Promise<unknown>): void;
  timer: Timer;
  log(message: string, detail?: unknown): void;
}

const SERVED_VERDICT: Record<Source, string> = { cache: "hit", r2: "r2", transcode: "transcode" };

export async function runChain(req: ImageRequestKey, candidates: FormatId[], origin: string, deps: ChainDeps): Promise<ChainResult> {
  const { config, store, cache, timer } = deps;
  const tried: Verdict[] = [];
  const production = new Production(
    () => store.findOriginal(req.stem, `${req.stem}.${req.extension}`),
    req.size,
    { maxSourcePixels: config.maxSourcePixels, background: config.flattenBackground },
    timer,
  );

  // A queue, not a loop: a format without alpha meeting a transparent source goes to the back
  // (`heldForAlpha`) so every alpha-capable candidate is tried before anything is flattened.
  const queue = [...candidates];
  const heldForAlpha = new Set<FormatId>();
  while (queue.length > 0) {
    const format = queue.shift()!;
    const retry = heldForAlpha.has(format);
    const mime = formatSpec(format).mime;
    const cacheUrl = cacheKeyUrl(origin, config.cacheGeneration, req.stem, req.size, format);
    const remember = (bytes: ArrayBuffer, etag: string) =>
      deps.background(cache.put(cacheUrl, bytes, etag, mime).catch((e) => deps.log("cache put failed", e)));
    // What is produced from the original must be found again when the original is replaced.
    const rememberProduced = (bytes: ArrayBuffer, etag: string) => {
      remember(bytes, etag);
      deps.background(store.recordCached(req.stem, req.size, format).catch((e) => deps.log("purge index write failed", e)));
    };
    const served = (d: Omit<Delivery, "format">): ChainResult => {
      tried.push({ format, verdict: SERVED_VERDICT[d.source] });
      return { delivery: { format, ...d }, tried };
    };

    // 1. Edge cache: a hit touches nothing else.
    const hit = retry ? null : await timer.time("cache", () => cache.match(cacheUrl));
    if (hit) return served({ source: "cache", body: hit.body, size: hit.size, etag: hit.etag });

    // 2. R2: what the origin pre-produced. The URL's own spelling (`a1.jpeg`) is tried too.
    const keys = retry ? [] : [variantKey(req.stem, req.size, format)];
    if (!retry && format === req.format && !keys.includes(req.key)) keys.push(req.key);
    let stored = null;
    for (const key of keys) {
      stored = await timer.time("r2", () => store.get(key));
      if (stored && sniffFormat(new Uint8Array(stored.bytes, 0, Math.min(64, stored.bytes.byteLength))) !== format) {
        // Never send bytes that contradict their Content-Type: a broken image is worse than a fallback.
        deps.log(`R2 object ${key} is not ${format}; skipped`);
        stored = null;
      }
      if (stored) break;
    }
    if (stored) {
      remember(stored.bytes, stored.etag);
      return served({ source: "r2", body: stored.bytes, size: stored.bytes.byteLength, etag: stored.etag });
    }

    // 3. On demand.
    if (!config.onDemand.has(format)) {
      tried.push({ format, verdict: "miss" });
      continue;
    }
    try {
      const original = await production.passthrough(format);
      if (original) {
        rememberProduced(original.bytes, original.etag);
        return served({ source: "r2", body: original.bytes, size: original.bytes.byteLength, etag: original.etag });
      }
      await checkBudget(production, format, config, () =>
        deps.background(produceDeferred(production, req, format, deps).catch((e) => deps.log(`deferred ${format} for ${req.key} failed`, e))),
      );
      if (!retry && !formatSpec(format).supportsAlpha && queue.some((f) => formatSpec(f).supportsAlpha) && (await production.transparent())) {
        heldForAlpha.add(format);
        queue.push(format);
        continue;
      }
      const bytes = await production.encode(format, config.encode[format]);
      const etag = await strongEtag(bytes);
      rememberProduced(bytes, etag);
      if (config.writeBack.has(format)) {
        const key = variantKey(req.stem, req.size, format);
        deps.background(
          store
            .putIfAbsent(key, bytes, mime, { producedBy: "on-demand", sourceKey: (await production.source()).image.key })
            .catch((e) => deps.log(`write-back of ${key} failed`, e)),
        );
      }
      return served({ source: "transcode", body: bytes, size: bytes.byteLength, etag, peakWasmBytes: production.codecs.peakWasmBytes });
    } catch (e) {
      if (!(e instanceof ProductionError)) throw e;
      deps.log(`candidate ${format} for ${req.key} failed: ${e.message}`);
      tried.push({ format, verdict: e.verdict });
    }
  }
  return { delivery: null, tried };
}

/**
 * Refuses, before any of it runs, a job predicted to exceed the memory budget (the isolate would
 * be killed) or the request's CPU budget. A job over the CPU budget but within the background
 * budget is handed to `defer`, so a later request finds it in R2.
 */
async function checkBudget(production: Production, format: FormatId, config: Config, defer: () => void): Promise<void> {
  const { header, plan } = await production.source();
  const shape = {
    sourceFormat: header.format,
    sourcePixels: header.width * header.height,
    outputFormat: format,
    outputPixels: plan.width * plan.height,
    settings: config.encode[format],
  };
  const now = predictCost({ ...shape, pixelsReady: production.pixelsReady });
  if (now.memoryBytes > config.memoryBudgetBytes) {
    throw new ProductionError("over-memory-budget", `${format}: predicted ${(now.memoryBytes / 2 ** 20).toFixed(0)} MiB of WASM memory`);
  }
  if (now.cpuMs > config.cpuBudgetMs) {
    if (predictCost({ ...shape, pixelsReady: false }).cpuMs <= config.backgroundCpuBudgetMs) defer();
    throw new ProductionError("over-cpu-budget", `${format}: predicted ${now.cpuMs.toFixed(0)} ms of CPU`);
  }
}

/**
 * Produces a variant skipped for CPU after the response has gone (Sanity's pattern) and
 * stores it in R2, where the next request's lookup finds it.
 */
async function produceDeferred(production: Production, req: ImageRequestKey, format: FormatId, deps: ChainDeps): Promise<void> {
  // Yield to the event loop first so the response is written before the encode takes the thread.
  await new Promise((resolve) => setTimeout(resolve, 0));
  const bytes = await production.encode(format, deps.config.encode[format]);
  const key = variantKey(req.stem, req.size, format);
  const sourceKey = (await production.source()).image.key;
  await deps.store.putIfAbsent(key, bytes, formatSpec(format).mime, { producedBy: "on-demand", sourceKey });
  deps.log(`deferred ${key} produced: ${bytes.byteLength} bytes, WASM peak ${production.codecs.peakWasmBytes} bytes`);
}

/** A content hash, so identical bytes get the same validator in every colo and isolate. */
async function strongEtag(bytes: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let hex = "";
  for (let i = 0; i < 16; i++) hex += digest[i].toString(16).padStart(2, "0");
  return `"${hex}"`;
}
