/**
 * @module deliver/chain
 * The lookup chain: a list of tiers (`TIERS`: edge cache, what R2 holds, production) walked for
 * each candidate format, best first; the first that yields bytes wins. Every candidate gets a
 * verdict, reported in X-Image-Tried and, when all fail, in the 404/503 body. Whether a
 * production runs now, is deferred to the queue or is refused, and its admission to the
 * isolate's memory, are production's decisions (`Production.decide`, `Production.admit`); the
 * chain only orders the work: deferred candidates are queued once another is served, or the
 * best of them is produced within the platform's CPU limit when nothing else can be.
 */
import { backgroundFor, encodeFor, type Config } from "../config";
import { formatSpec, type FormatId } from "../formats";
import { sniffFormat } from "../headers";
import type { MemoryGate, Ticket } from "../produce/admission";
import { Production, ProductionError, TEMPORARY_VERDICTS, type Timer } from "../produce/pipeline";
import { describeSearch } from "../produce/perceptual";
import type { VariantCache } from "../storage/cache";
import { strongEtag } from "../storage/etag";
import { dropIfSourceChanged, type MadeFrom } from "../storage/freshness";
import type { ImageStore, ObjectInfo } from "../storage/r2";
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
  /** What per-image quality chose when this response was produced (produce/perceptual `describeSearch`). */
  quality?: string;
  /** A fast on-demand encode stored in R2 that a background re-encode may replace (jobs/reencode). */
  provisional?: boolean;
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
  /** Queues the slow re-encode of the stored variant `key` (jobs/reencode). */
  reencode(key: string): Promise<void>;
  timer: Timer;
  log(message: string, detail?: unknown): void;
  /** The isolate's memory gate (produce/admission): every production reserves its predicted memory. */
  gate: MemoryGate;
}

type Produced = { bytes: ArrayBuffer; etag: string; peakBytes: number; quality?: string };

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

/**
 * Views of provisional variants seen by this isolate, by R2 key: at REENCODE_MIN_REQUESTS the
 * variant is queued for its slow re-encode, once per isolate. Counted here, not in R2, so a
 * cache hit stays free of storage operations; each isolate counts on its own, so a popular
 * variant reaches the threshold in one of them soon enough. Bounded: when full it starts over.
 */
const views = new Map<string, number>();
const MAX_COUNTED = 10_000;

const SERVED_VERDICT: Record<Source, string> = { cache: "hit", r2: "r2", transcode: "transcode" };

export async function runChain(req: ImageRequestKey, candidates: FormatId[], origin: string, deps: ChainDeps): Promise<ChainResult> {
  const ticket = deps.gate.ticket();
  try {
    return await walk(req, candidates, origin, deps, ticket);
  } finally {
    // Every wait for room this request made (reading the original, each candidate's job).
    if (ticket.waitedMs > 0) deps.timer.add?.("wait", ticket.waitedMs);
    ticket.release();
  }
}

/**
 * What a tier makes of one candidate: bytes to serve; `next` (nothing here, try the next tier;
 * `storeFailed` when R2 could not be read, so "nothing anywhere" is not final); a `verdict` that
 * ends the candidate; `hold` (a format without alpha met a transparent source: try it again
 * after every alpha-capable candidate); or `still` (the source is an animation this format
 * cannot carry: its first frame is served only when no candidate can carry the animation).
 */
type Outcome =
  | { kind: "served"; delivery: Omit<Delivery, "format"> }
  | { kind: "next"; storeFailed?: boolean }
  | { kind: "verdict"; verdict: string }
  | { kind: "hold" }
  | { kind: "still" };

/** Where a candidate's bytes may come from, best first: the edge cache, what R2 holds, production. */
type Tier = (w: Walk, format: FormatId, retry: boolean) => Promise<Outcome>;
const TIERS: readonly Tier[] = [cacheTier, storedTier, produceTier];

/** One request's walk over its candidates: the state the tiers share. */
class Walk {
  readonly tried: Verdict[] = [];
  readonly production: Production;
  /**
   * Candidates production deferred for this request's CPU budget (but not for the platform's
   * limit or a queue consumer): queued for the background when another candidate is served
   * now, else the best of them is produced in this request, so a first view is never a 404 for
   * CPU alone.
   */
  readonly overCpu: { format: FormatId; sourceKey: string; sourceEtag: string }[] = [];
  /**
   * Candidates still to try. A queue, not a loop: a candidate held for alpha goes to the back,
   * so every alpha-capable candidate is tried before anything is flattened.
   */
  readonly queue: FormatId[];
  readonly heldForAlpha = new Set<FormatId>();
  /**
   * Candidates that would lose the source's animation, tried last as stills of its first
   * frame (Cloudflare Images' `anim=false`), after every candidate that keeps it, including
   * those deferred for CPU.
   */
  readonly stills: FormatId[] = [];
  /** Walking `stills`: cache keys are the stills' own, and R2 never holds one. */
  stillPass = false;

  constructor(
    readonly req: ImageRequestKey,
    readonly origin: string,
    readonly deps: ChainDeps,
    readonly ticket: Ticket,
    candidates: FormatId[],
  ) {
    this.queue = [...candidates];
    this.production = new Production(
      // The original is held whole while it is decoded: room for its bytes is taken before they
      // are read (storage/r2 `ReadRoom`, produce/admission `reserveRead`).
      () => deps.store.findOriginal(req.stem, `${req.stem}.${req.extension}`, ticket.readRoom(() => this.waitLeft())),
      req.size,
      { maxSourcePixels: deps.config.maxSourcePixels, maxAnimationFrames: deps.config.maxAnimationFrames, background: backgroundFor(deps.config, req.size), memoryBudgetBytes: deps.config.memoryBudgetBytes },
      deps.timer,
    );
  }

  /**
   * The original itself, streamed from R2, when a full-size request's candidate is the URL's own
   * format and the object under the URL's key was checked when pushed (our API stored its
   * header's facts: format, size, limits). Nothing is decoded, so nothing is held: 30 concurrent
   * as-is reads of a 24.6 MB original took 1,348 MiB when each read it whole. Anything else (a
   * sibling original, an object stored around the API) goes through production, which checks it.
   */
  async streamedOriginal(format: FormatId): Promise<Omit<Delivery, "format"> | null> {
    if (this.req.size || this.stillPass || format !== this.req.format) return null;
    let opened;
    try {
      opened = await this.deps.timer.time("r2", () => this.deps.store.open(`${this.req.stem}.${this.req.extension}`, { headBytes: 64 }));
    } catch (e) {
      // R2 failing here is production's to report (it reads the original again).
      this.deps.log(`streaming the original of ${this.req.key} failed`, e);
      return null;
    }
    if (!opened) return null;
    const { info, head, body } = opened;
    if (info.customMetadata.producedBy !== "origin" || info.customMetadata.format !== format || sniffFormat(head) !== format) {
      if (body instanceof ReadableStream) await body.cancel();
      return null;
    }
    const writes = [this.cacheFromR2(format, info.key, info, info.etag, false), this.recordForPurge(format)];
    this.confirmFresh(writes, { sourceKey: info.key, sourceEtag: info.etag, cacheUrls: [this.cacheUrl(format)] });
    return { source: "r2", body, size: info.bytes, etag: info.etag };
  }

  /**
   * Fills the edge cache from a second read of the stored object `key` (the version `info`
   * names), at the cache's own pace: a tee would buffer whatever the client is slower to take.
   */
  cacheFromR2(format: FormatId, key: string, info: ObjectInfo, etag: string, provisional: boolean): Promise<unknown> {
    const cacheUrl = this.cacheUrl(format);
    const task = this.deps.store
      .open(key, { headBytes: 0, etag: info.etag })
      .then((copy) => copy && this.deps.cache.put(cacheUrl, { stream: copy.body as ReadableStream, size: info.bytes }, etag, formatSpec(format).mime, provisional))
      .catch((e) => this.deps.log("cache put failed", e));
    this.deps.background(task);
    return task;
  }

  /** Once `writes` have landed, undoes them if the original they were made from has changed (storage/freshness). */
  confirmFresh(writes: Promise<unknown>[], made: MadeFrom): void {
    this.deps.background(
      Promise.all(writes)
        .then(() => dropIfSourceChanged(this.deps.store, this.deps.cache, made))
        .then((dropped) => dropped && this.deps.log(`a ${this.req.key} variant made from a replaced original is undone`))
        .catch((e) => this.deps.log("freshness check failed", e)),
    );
  }

  /**
   * What is left of the request's ADMISSION_WAIT_MS: one wait for room per request, not per
   * candidate (Chrome's three candidates each waited 8 s, a 503 after 30 s).
   */
  waitLeft(): number {
    return Math.max(0, this.deps.config.admissionWaitMs - this.ticket.waitedMs);
  }

  /** Whether an alpha-capable candidate is still to be tried. */
  pendingAlphaCapable(): boolean {
    return this.queue.some((f) => formatSpec(f).supportsAlpha);
  }

  cacheUrl(format: FormatId, still = this.stillPass): string {
    return cacheKeyUrl(this.origin, this.deps.config.cacheGeneration, this.req.stem, this.req.size, format, still);
  }

  flushDeferred(except?: FormatId): void {
    for (const d of this.overCpu) {
      if (d.format === except) continue;
      this.deps.background(
        this.deps.defer(variantKey(this.req.stem, this.req.size, d.format), d.sourceKey, d.sourceEtag).catch((e) => this.deps.log(`deferring ${d.format} for ${this.req.key} failed`, e)),
      );
    }
  }

  remember(format: FormatId, bytes: ArrayBuffer, etag: string, provisional = false): Promise<unknown> {
    const task = this.deps.cache.put(this.cacheUrl(format), bytes, etag, formatSpec(format).mime, provisional).catch((e) => this.deps.log("cache put failed", e));
    this.deps.background(task);
    return task;
  }

  /**
   * What is produced from the original must be found again when the original is replaced (the
   * purge index), and must not outlive it when the replacement lands while it is being written
   * (storage/freshness): once every write of it (`writeBack` too) has landed, the original is
   * checked again.
   */
  rememberProduced(format: FormatId, bytes: ArrayBuffer, etag: string, source: { key: string; etag: string }, provisional = false, writeBack?: { key: string; done: Promise<unknown> }): void {
    const writes = [this.remember(format, bytes, etag, provisional), this.recordForPurge(format), writeBack?.done ?? Promise.resolve()];
    this.confirmFresh(writes, { sourceKey: source.key, sourceEtag: source.etag, cacheUrls: [this.cacheUrl(format)], r2Key: writeBack?.key });
  }

  recordForPurge(format: FormatId): Promise<unknown> {
    const task = this.deps.store.recordCached(this.req.stem, this.req.size, format).catch((e) => this.deps.log("purge index write failed", e));
    this.deps.background(task);
    return task;
  }

  /**
   * Marks the variant's own cache entry: the source is an animation `format` cannot carry, so
   * later requests go on to the animated candidates without reading the original. Purged with
   * the variant when the original changes.
   */
  rememberAnimatedSource(format: FormatId): void {
    const url = this.cacheUrl(format, false);
    this.deps.background(this.deps.cache.put(url, new ArrayBuffer(0), `"animated-source"`, formatSpec(format).mime, false, true).catch((e) => this.deps.log("cache put failed", e)));
    this.recordForPurge(format);
  }

  /** Whether a stored variant is a fast on-demand encode the background may still re-encode. */
  provisional(format: FormatId, metadata: Record<string, string> | undefined): boolean {
    return this.deps.config.reencode.formats.has(format) && metadata?.producedBy === "on-demand" && !metadata.reencoded;
  }

  /** The write-back of this request's production, which a re-encode must wait for. */
  writeBack: Promise<unknown> = Promise.resolve();

  /** Counts a view of a provisional variant; the one that reaches the threshold queues its re-encode. */
  countView(format: FormatId): void {
    const key = variantKey(this.req.stem, this.req.size, format);
    if (views.size >= MAX_COUNTED && !views.has(key)) views.clear();
    const n = (views.get(key) ?? 0) + 1;
    views.set(key, n);
    if (n !== this.deps.config.reencode.minRequests) return;
    this.deps.background(
      this.writeBack.then(() => this.deps.reencode(key)).catch((e) => this.deps.log(`queueing the re-encode of ${key} failed`, e)),
    );
  }

  served(format: FormatId, d: Omit<Delivery, "format">): ChainResult {
    this.tried.push({ format, verdict: SERVED_VERDICT[d.source] });
    if (d.provisional) this.countView(format);
    this.flushDeferred(d.source === "transcode" ? format : undefined);
    return { delivery: { format, ...d }, tried: this.tried };
  }

  /**
   * Produces `format` within `cpuMs` once production decides it can run now and the gate
   * admits it; shared with every concurrent request of this isolate for the same variant.
   */
  async produce(format: FormatId, cpuMs: number): Promise<Omit<Delivery, "format">> {
    const { config, store } = this.deps;
    const settings = encodeFor(config, format, this.req.size);
    // The source's ETag is part of the key: a replaced original is never answered from here.
    // (Loaded already: passthrough() read it.) No await before the map is consulted and set.
    const key = `${this.cacheUrl(format)}@${this.production.loaded?.image.etag}`;
    const other = running(key);
    if (other) {
      // Another request of this isolate is producing (or just produced) this very variant: share its bytes.
      const started = Date.now();
      const shared = await follow(other).finally(() => this.deps.timer.add?.("wait", Date.now() - started));
      return { source: "transcode", body: shared.bytes.slice(0), size: shared.bytes.byteLength, etag: shared.etag };
    }
    // Registered before the first await, so that every later request finds it.
    const entry: { result?: Produced; error?: unknown; doneAt?: number; startedAt: number } = { startedAt: Date.now() };
    inflight.set(key, entry);
    let done: Produced;
    try {
      const bytes = await this.production.produce(this.ticket, format, settings, { memoryBytes: config.memoryBudgetBytes, cpuMs, waitMs: this.waitLeft() });
      done = { bytes, etag: await strongEtag(bytes), peakBytes: this.production.codecs.peakBytes, quality: this.production.searched && describeSearch(this.production.searched) };
      entry.result = done;
    } catch (e) {
      // Followers already waiting share the failure; later requests try afresh.
      entry.error = e;
      inflight.delete(key);
      throw e;
    } finally {
      entry.doneAt = Date.now();
    }
    const { bytes, etag, peakBytes, quality } = done;
    const { image } = await this.production.source();
    const source = { key: image.key, etag: image.etag };
    // A still of an animation is only ever cached under its own key: R2's variant key is what
    // clients that keep the animation are served from.
    if (this.stillPass) {
      this.rememberProduced(format, bytes, etag, source);
      return { source: "transcode", body: bytes.slice(0), size: bytes.byteLength, etag, peakBytes, quality };
    }
    // Written back (every re-encode format is), it becomes a candidate for the slow re-encode;
    // the edge cache says so.
    const provisional = config.reencode.formats.has(format) && this.req.size?.quality === undefined;
    let writeBack: { key: string; done: Promise<unknown> } | undefined;
    // A variant at its own quality level is not written back: the slow re-encode of written-back
    // variants works at the configured level, and would replace it with another.
    if (config.writeBack.has(format) && this.req.size?.quality === undefined) {
      const wbKey = variantKey(this.req.stem, this.req.size, format);
      // How it was made, so the re-encode knows what it replaces and from which source version.
      const meta = { producedBy: "on-demand", sourceKey: image.key, sourceEtag: image.etag, etag, quality: String(this.production.searched?.quality ?? settings.quality), speed: String(settings.speed) };
      this.writeBack = store.putIfAbsent(wbKey, bytes, formatSpec(format).mime, meta).catch((e) => this.deps.log(`write-back of ${wbKey} failed`, e));
      this.deps.background(this.writeBack);
      writeBack = { key: wbKey, done: this.writeBack };
    }
    this.rememberProduced(format, bytes, etag, source, provisional, writeBack);
    return { source: "transcode", body: bytes.slice(0), size: bytes.byteLength, etag, peakBytes, quality, provisional };
  }
}

/** 1. The edge cache: a hit touches nothing else. A failing cache is a miss. */
async function cacheTier(w: Walk, format: FormatId, retry: boolean): Promise<Outcome> {
  if (retry) return { kind: "next" };
  const hit = await w.deps.timer.time("cache", () => w.deps.cache.match(w.cacheUrl(format))).catch((e) => (w.deps.log("cache match failed", e), null));
  if (hit?.animatedSource) {
    await hit.body?.cancel();
    return { kind: "still" };
  }
  return hit ? { kind: "served", delivery: { source: "cache", body: hit.body, size: hit.size, etag: hit.etag, provisional: hit.provisional } } : { kind: "next" };
}

/** Stored objects up to this size are read whole; larger ones are only ever streamed. */
const HELD_BYTES = 1 << 20;

/**
 * 2. R2: what the origin pre-produced. For the URL's own format, its own spelling (`a1.JPG`)
 * first: an object stored under exactly that key is the one asked for.
 */
async function storedTier(w: Walk, format: FormatId, retry: boolean): Promise<Outcome> {
  if (retry || w.stillPass) return { kind: "next" };
  const keys = [variantKey(w.req.stem, w.req.size, format)];
  if (format === w.req.format && !keys.includes(w.req.key)) keys.unshift(w.req.key);
  let storeFailed = false;
  for (const key of keys) {
    let opened;
    try {
      opened = await w.deps.timer.time("r2", () => w.deps.store.open(key, { headBytes: 64, holdUpTo: HELD_BYTES }));
    } catch (e) {
      // R2 unavailable is never "not found": the candidate may still be produced, and if
      // nothing can be served the answer is a 503, not a 404.
      w.deps.log(`R2 read of ${key} failed`, e);
      storeFailed = true;
      continue;
    }
    if (!opened) continue;
    const { info, head, body } = opened;
    if (sniffFormat(head) !== format) {
      // Never send bytes that contradict their Content-Type: a broken image is worse than a fallback.
      if (body instanceof ReadableStream) await body.cancel();
      w.deps.log(`R2 object ${key} is not ${format}; skipped`);
      continue;
    }
    const metadata = info.customMetadata;
    // A written-back variant keeps the ETag it was first served with (its content hash), so a
    // client's validator stays good whichever tier serves it next.
    const etag = metadata.etag ?? info.etag;
    const provisional = w.provisional(format, metadata);
    // Small objects are held (one read serves the client and the cache); larger ones are
    // streamed to the client and read again for the cache, never held whole.
    const cached = body instanceof ArrayBuffer ? w.remember(format, body, etag, provisional) : w.cacheFromR2(format, key, info, etag, provisional);
    // A variant written back from an original that was replaced while this read it: the
    // cache entry made of it is checked too.
    const { sourceKey, sourceEtag } = metadata;
    if (sourceKey && sourceEtag) w.confirmFresh([cached], { sourceKey, sourceEtag, cacheUrls: [w.cacheUrl(format)], r2Key: key });
    return { kind: "served", delivery: { source: "r2", body, size: info.bytes, etag, provisional } };
  }
  return { kind: "next", storeFailed };
}

/** 3. On demand, as production decides: now, deferred to the queue, or refused. */
async function produceTier(w: Walk, format: FormatId, retry: boolean): Promise<Outcome> {
  const { config } = w.deps;
  if (!config.onDemand.has(format)) return { kind: "next" };
  const { production } = w;
  const settings = encodeFor(config, format, w.req.size);
  try {
    const streamed = await w.streamedOriginal(format);
    if (streamed) return { kind: "served", delivery: streamed };
    const original = await production.passthrough(format);
    if (original) {
      w.rememberProduced(format, original.bytes, original.etag, original);
      return { kind: "served", delivery: { source: "r2", body: original.bytes, size: original.bytes.byteLength, etag: original.etag } };
    }
    if (!w.stillPass && (await production.animatedSource()) && !(await production.animates(format))) {
      w.rememberAnimatedSource(format);
      return { kind: "still" };
    }
    // A still is the last resort, never queued (a queued job would store it under the
    // variant's own key): it gets the platform's CPU limit now or nothing.
    const decision = w.stillPass
      ? await production.decide(format, settings, { memoryBytes: config.memoryBudgetBytes, cpuMs: config.cpuLimitMs })
      : await production.decide(format, settings, { memoryBytes: config.memoryBudgetBytes, cpuMs: config.cpuBudgetMs, backgroundCpuMs: config.backgroundCpuBudgetMs });
    if (decision.action === "defer") {
      const { image } = await production.source();
      w.overCpu.push({ format, sourceKey: image.key, sourceEtag: image.etag });
    }
    if (decision.action !== "now") throw decision.reason;
    const mustCheckAlpha = !retry && !formatSpec(format).supportsAlpha && w.pendingAlphaCapable();
    // Checking transparency decodes: the decode is admitted first.
    if (mustCheckAlpha && (await production.mayBeTransparent())) await production.admit(w.ticket, format, settings, w.waitLeft());
    if (mustCheckAlpha && (await production.transparent())) return { kind: "hold" };
    return { kind: "served", delivery: await w.produce(format, w.stillPass ? config.cpuLimitMs : config.cpuBudgetMs) };
  } catch (e) {
    if (!(e instanceof ProductionError)) throw e;
    w.deps.log(`candidate ${format} for ${w.req.key} failed: ${e.message}`);
    return { kind: "verdict", verdict: e.verdict };
  }
}

async function walk(req: ImageRequestKey, candidates: FormatId[], origin: string, deps: ChainDeps, ticket: Ticket): Promise<ChainResult> {
  const w = new Walk(req, origin, deps, ticket, candidates);
  while (w.queue.length > 0) {
    const format = w.queue.shift()!;
    const retry = w.heldForAlpha.has(format);
    let storeFailed = false;
    let verdict: string | null = null;
    let held = false;
    for (const tier of TIERS) {
      const out = await tier(w, format, retry);
      if (out.kind === "served") return w.served(format, out.delivery);
      if (out.kind === "hold") {
        w.heldForAlpha.add(format);
        w.queue.push(format);
        held = true;
        break;
      }
      if (out.kind === "still") {
        w.stills.push(format);
        verdict = "animated-source";
        break;
      }
      if (out.kind === "verdict") {
        verdict = out.verdict;
        break;
      }
      storeFailed ||= !!out.storeFailed;
    }
    if (!held) w.tried.push({ format, verdict: verdict ?? (storeFailed ? "store-error" : "miss") });
  }
  // Replaces a candidate's earlier verdict, in place, with its later one.
  const reverdict = (v: Verdict) => w.tried.splice(w.tried.findIndex((t) => t.format === v.format), 1, v);
  // Nothing could be served within the request's budget: the best candidate deferred for CPU
  // alone is produced now, within the platform's CPU limit (wrangler.toml `limits.cpu_ms`).
  for (const { format } of [...w.overCpu]) {
    try {
      const result = w.served(format, await w.produce(format, deps.config.cpuLimitMs));
      // Its deferral verdict gives way, in place, to the one it was served with.
      reverdict(w.tried.pop()!);
      return result;
    } catch (e) {
      if (!(e instanceof ProductionError)) throw e;
      deps.log(`candidate ${format} for ${req.key} failed within the CPU limit: ${e.message}`);
      // What it failed with now replaces "deferred"; a final failure (a decode error) is not
      // queued to fail again, and does not make the answer a 503.
      reverdict({ format, verdict: e.verdict });
      if (!TEMPORARY_VERDICTS.has(e.verdict)) w.overCpu.splice(w.overCpu.findIndex((d) => d.format === format), 1);
    }
  }
  // Still nothing keeps the animation: the first frame, as a still, in the best format left.
  w.stillPass = true;
  for (const format of w.stills) {
    let verdict: string | null = null;
    for (const tier of TIERS) {
      const out = await tier(w, format, false);
      if (out.kind === "served") {
        const result = w.served(format, out.delivery);
        reverdict(w.tried.pop()!);
        return result;
      }
      if (out.kind === "verdict") {
        verdict = out.verdict;
        break;
      }
    }
    reverdict({ format, verdict: verdict ?? "miss" });
  }
  // Still nothing: the deferred candidates go to the queue, and the answer is "later" (503).
  w.flushDeferred();
  return { delivery: null, tried: w.tried };
}
