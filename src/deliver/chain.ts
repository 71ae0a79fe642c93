/**
 * @module deliver/chain
 * The lookup chain. For each candidate format, best first: edge cache, then a pre-produced
 * variant in R2, then on-demand production; the first that yields bytes wins. Every candidate
 * gets a verdict, reported in X-Image-Tried and, when all fail, in the 404 body.
 */
import type { Config } from "../config";
import { formatSpec, type FormatId } from "../formats";
import { sniffFormat } from "../headers";
import { AdmissionTimeout, type MemoryGate, type Ticket } from "../produce/admission";
import { Production, ProductionError, TEMPORARY_VERDICTS, type Timer } from "../produce/pipeline";
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
  /** Whole-job memory high-water mark (WASM and JS) of the production, when this response was produced. */
  peakBytes?: number;
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
  /** Queues the production of `outputKey` from `sourceKey` (a variant over the request's CPU budget). */
  defer(outputKey: string, sourceKey: string, sourceEtag: string): Promise<void>;
  timer: Timer;
  log(message: string, detail?: unknown): void;
  /** The isolate's memory gate (produce/admission): every production reserves its predicted memory. */
  gate: MemoryGate;
}

type Produced = { bytes: ArrayBuffer; etag: string; peakBytes: number };

/**
 * Productions in flight in this isolate, by variant (cache key: host, stem, size, format, the
 * settings hash and the source's ETag): concurrent requests for one variant share one decode
 * and one encode. The leader writes the outcome into the entry; followers poll it with their
 * own timers, since a request must not wait on a promise only another request settles (the
 * runtime cancels it as hung).
 */
const inflight = new Map<string, { result?: Produced; error?: unknown; doneAt?: number; startedAt: number }>();

/**
 * A finished production stays shareable this long: requests that arrived with it were held up
 * by its CPU (one isolate runs one thing at a time) and reach this tier only after it ended,
 * having missed the edge cache it was still filling.
 */
const RECENT_MS = 10_000;
/** A leader canceled by the runtime never finishes its entry: followers stop waiting then. */
const LEADER_GIVE_UP_MS = 120_000;

function running(key: string) {
  const now = Date.now();
  for (const [k, v] of inflight) {
    if ((v.doneAt !== undefined && now - v.doneAt > RECENT_MS) || now - v.startedAt > LEADER_GIVE_UP_MS) inflight.delete(k);
  }
  return inflight.get(key);
}

async function follow(entry: { result?: Produced; error?: unknown; doneAt?: number; startedAt: number }): Promise<Produced> {
  while (entry.doneAt === undefined) {
    if (Date.now() - entry.startedAt > LEADER_GIVE_UP_MS) throw new ProductionError("admission-timeout", "the request producing this variant never finished");
    await new Promise((r) => setTimeout(r, 20));
  }
  if (entry.error !== undefined) throw entry.error;
  return entry.result!;
}

const SERVED_VERDICT: Record<Source, string> = { cache: "hit", r2: "r2", transcode: "transcode" };

export async function runChain(req: ImageRequestKey, candidates: FormatId[], origin: string, deps: ChainDeps): Promise<ChainResult> {
  const ticket = deps.gate.ticket();
  try {
    return await walk(req, candidates, origin, deps, ticket);
  } finally {
    ticket.release();
  }
}

async function walk(req: ImageRequestKey, candidates: FormatId[], origin: string, deps: ChainDeps, ticket: Ticket): Promise<ChainResult> {
  const { config, store, cache, timer } = deps;
  const tried: Verdict[] = [];
  const production = new Production(
    () => store.findOriginal(req.stem, `${req.stem}.${req.extension}`),
    req.size,
    { maxSourcePixels: config.maxSourcePixels, background: config.flattenBackground },
    timer,
  );

  // Candidates too slow for this request's CPU budget (but not for the platform's limit or a
  // queue consumer): queued for the background when another candidate is served now, else the
  // best of them is produced in this request, so a first view is never a 404 for CPU alone.
  const overCpu: { format: FormatId; sourceKey: string; sourceEtag: string }[] = [];
  const flushDeferred = (except?: FormatId) => {
    for (const d of overCpu) {
      if (d.format === except) continue;
      deps.background(deps.defer(variantKey(req.stem, req.size, d.format), d.sourceKey, d.sourceEtag).catch((e) => deps.log(`deferring ${d.format} for ${req.key} failed`, e)));
    }
  };
  /** Reserves the job's predicted whole-job memory in the isolate's gate before any of it runs. */
  const admit = async (format: FormatId) => {
    const { now } = await production.cost(format, config.encode[format]);
    try {
      await ticket.ensure(now.memoryBytes, config.admissionWaitMs);
    } catch (e) {
      if (e instanceof AdmissionTimeout) throw new ProductionError("admission-timeout", e.message);
      throw e;
    }
  };
  const produce = async (format: FormatId, cpuMs: number): Promise<ChainResult> => {
    // The source's ETag is part of the key: a replaced original is never answered from here.
    // (Loaded already: passthrough() read it.) No await before the map is consulted and set.
    const key = `${cacheKeyUrl(origin, config.cacheGeneration, req.stem, req.size, format)}@${production.loaded?.image.etag}`;
    const other = running(key);
    if (other) {
      // Another request of this isolate is producing (or just produced) this very variant: share its bytes.
      const shared = await follow(other);
      return served(format, { source: "transcode", body: shared.bytes.slice(0), size: shared.bytes.byteLength, etag: shared.etag });
    }
    // Registered before the first await, so that every later request finds it.
    const entry: { result?: Produced; error?: unknown; doneAt?: number; startedAt: number } = { startedAt: Date.now() };
    inflight.set(key, entry);
    let done: Produced;
    try {
      await production.assertWithinBudget(format, config.encode[format], { memoryBytes: config.memoryBudgetBytes, cpuMs });
      await admit(format);
      const bytes = await production.encode(format, config.encode[format]);
      done = { bytes, etag: await strongEtag(bytes), peakBytes: production.codecs.peakBytes };
      entry.result = done;
    } catch (e) {
      // Followers already waiting share the failure; later requests try afresh.
      entry.error = e;
      inflight.delete(key);
      throw e;
    } finally {
      entry.doneAt = Date.now();
    }
    const { bytes, etag, peakBytes } = done;
    rememberProduced(format, bytes, etag);
    if (config.writeBack.has(format)) {
      const wbKey = variantKey(req.stem, req.size, format);
      const sourceKey = (await production.source()).image.key;
      deps.background(store.putIfAbsent(wbKey, bytes, formatSpec(format).mime, { producedBy: "on-demand", sourceKey, etag }).catch((e) => deps.log(`write-back of ${wbKey} failed`, e)));
    }
    return served(format, { source: "transcode", body: bytes.slice(0), size: bytes.byteLength, etag, peakBytes });
  };
  const remember = (format: FormatId, bytes: ArrayBuffer, etag: string) =>
    deps.background(cache.put(cacheKeyUrl(origin, config.cacheGeneration, req.stem, req.size, format), bytes, etag, formatSpec(format).mime).catch((e) => deps.log("cache put failed", e)));
  // What is produced from the original must be found again when the original is replaced.
  const rememberProduced = (format: FormatId, bytes: ArrayBuffer, etag: string) => {
    remember(format, bytes, etag);
    deps.background(store.recordCached(req.stem, req.size, format).catch((e) => deps.log("purge index write failed", e)));
  };
  const served = (format: FormatId, d: Omit<Delivery, "format">): ChainResult => {
    tried.push({ format, verdict: SERVED_VERDICT[d.source] });
    flushDeferred(d.source === "transcode" ? format : undefined);
    return { delivery: { format, ...d }, tried };
  };

  // A queue, not a loop: a format without alpha meeting a transparent source goes to the back
  // (`heldForAlpha`) so every alpha-capable candidate is tried before anything is flattened.
  const queue = [...candidates];
  const heldForAlpha = new Set<FormatId>();
  while (queue.length > 0) {
    const format = queue.shift()!;
    const retry = heldForAlpha.has(format);
    const cacheUrl = cacheKeyUrl(origin, config.cacheGeneration, req.stem, req.size, format);

    // 1. Edge cache: a hit touches nothing else. A failing cache is a miss.
    const hit = retry ? null : await timer.time("cache", () => cache.match(cacheUrl)).catch((e) => (deps.log("cache match failed", e), null));
    if (hit) return served(format, { source: "cache", body: hit.body, size: hit.size, etag: hit.etag });

    // 2. R2: what the origin pre-produced. The URL's own spelling (`a1.jpeg`) is tried too.
    const keys = retry ? [] : [variantKey(req.stem, req.size, format)];
    if (!retry && format === req.format && !keys.includes(req.key)) keys.push(req.key);
    let stored = null;
    let storeFailed = false;
    for (const key of keys) {
      try {
        stored = await timer.time("r2", () => store.get(key));
      } catch (e) {
        // R2 unavailable is never "not found": the candidate may still be produced, and if
        // nothing can be served the answer is a 503, not a 404.
        deps.log(`R2 read of ${key} failed`, e);
        storeFailed = true;
        stored = null;
      }
      if (stored && sniffFormat(new Uint8Array(stored.bytes, 0, Math.min(64, stored.bytes.byteLength))) !== format) {
        // Never send bytes that contradict their Content-Type: a broken image is worse than a fallback.
        deps.log(`R2 object ${key} is not ${format}; skipped`);
        stored = null;
      }
      if (stored) break;
    }
    if (stored) {
      remember(format, stored.bytes, stored.etag);
      return served(format, { source: "r2", body: stored.bytes, size: stored.bytes.byteLength, etag: stored.etag });
    }

    // 3. On demand.
    if (!config.onDemand.has(format)) {
      tried.push({ format, verdict: storeFailed ? "store-error" : "miss" });
      continue;
    }
    try {
      const original = await production.passthrough(format);
      if (original) {
        rememberProduced(format, original.bytes, original.etag);
        return served(format, { source: "r2", body: original.bytes, size: original.bytes.byteLength, etag: original.etag });
      }
      const cost = await production.cost(format, config.encode[format]);
      if (cost.now.cpuMs > config.cpuBudgetMs && cost.now.memoryBytes <= config.memoryBudgetBytes && cost.fromScratch.cpuMs <= config.backgroundCpuBudgetMs) {
        const { image } = await production.source();
        overCpu.push({ format, sourceKey: image.key, sourceEtag: image.etag });
      }
      await production.assertWithinBudget(format, config.encode[format], { memoryBytes: config.memoryBudgetBytes, cpuMs: config.cpuBudgetMs });
      const mustCheckAlpha = !retry && !formatSpec(format).supportsAlpha && queue.some((f) => formatSpec(f).supportsAlpha);
      // Checking transparency decodes: the decode is admitted first.
      if (mustCheckAlpha && (await production.mayBeTransparent())) await admit(format);
      if (mustCheckAlpha && (await production.transparent())) {
        heldForAlpha.add(format);
        queue.push(format);
        continue;
      }
      return await produce(format, config.cpuBudgetMs);
    } catch (e) {
      if (!(e instanceof ProductionError)) throw e;
      deps.log(`candidate ${format} for ${req.key} failed: ${e.message}`);
      // Too slow for this request and for the background too: that is final, not "later".
      const deferred = e.verdict !== "over-cpu-budget" || overCpu.some((d) => d.format === format);
      tried.push({ format, verdict: deferred ? e.verdict : "over-cpu-limit" });
    }
  }
  // Nothing could be served within the request's budget: the best candidate deferred for CPU
  // alone is produced now, within the platform's CPU limit (wrangler.toml `limits.cpu_ms`).
  for (const { format } of [...overCpu]) {
    try {
      const result = await produce(format, config.cpuLimitMs);
      // It was produced after all: its deferral verdict gives way to the one it was served with.
      const served = tried.pop()!;
      tried.splice(tried.findIndex((t) => t.format === format), 1, served);
      return result;
    } catch (e) {
      if (!(e instanceof ProductionError)) throw e;
      deps.log(`candidate ${format} for ${req.key} failed within the CPU limit: ${e.message}`);
      // What it failed with now replaces "deferred"; a final failure (a decode error) is not
      // queued to fail again, and does not make the answer a 503.
      tried.splice(tried.findIndex((t) => t.format === format), 1, { format, verdict: e.verdict });
      if (!TEMPORARY_VERDICTS.has(e.verdict)) overCpu.splice(overCpu.findIndex((d) => d.format === format), 1);
    }
  }
  // Still nothing: the deferred candidates go to the queue, and the answer is "later" (503).
  flushDeferred();
  return { delivery: null, tried };
}

/** A content hash, so identical bytes get the same validator in every colo and isolate. */
async function strongEtag(bytes: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let hex = "";
  for (let i = 0; i < 16; i++) hex += digest[i].toString(16).padStart(2, "0");
  return `"${hex}"`;
}
