/**
 * @module jobs/service
 * Accepting jobs (idempotently, by msg_id) and running them from the queue: each output is
 * produced with the same pipeline and budgets as on-demand delivery (the background CPU budget,
 * since a consumer invocation has its own CPU limit), stored in R2 with its metadata, and
 * reported; then the origin's notify_url is called back, with retries through the queue.
 */
import { backgroundFor, encodeFor, type Config } from "../config";
import { AppError } from "../errors";
import { formatSpec } from "../formats";
import { backgroundShare, isolateGate, type Ticket } from "../produce/admission";
import { Production, ProductionError, type Timer } from "../produce/pipeline";
import type { VariantCache } from "../storage/cache";
import { dropIfSourceChanged } from "../storage/freshness";
import type { Storage } from "../storage/r2";
import { cacheKeyUrl, parseImageKey, sizeSuffix, type ImageRequestKey } from "../variants/key";
import { reencode } from "./reencode";
import { codeOf, retriedInBackground } from "../produce/verdicts";
import { jobStore, OUTPUT_CODES, type JobMessage, type JobRequest, type JobState, type OutputResult } from "./model";

export interface JobDeps {
  config: Config;
  /** Every R2 access goes through it (storage/r2). */
  store: Storage;
  cache: VariantCache;
  queue: Queue<JobMessage>;
  log(message: string, detail?: unknown): void;
}

const untimed: Timer = { time: (_stage, fn) => fn() };

/**
 * A queued or running job not updated for this long has lost its message: a running job saves
 * its state after every output, and a queued one waits for at most its retries' delays (5 s,
 * 10 s, ... about a minute over JOB_MAX_DELIVERIES at the default base). Submitting it again
 * queues it again.
 */
export const STALE_JOB_MS = 10 * 60_000;

export function jobService(deps: JobDeps) {
  const { config, cache, queue, log } = deps;
  const objects = deps.store;
  const store = jobStore(objects);

  /** Creates and queues a job; an existing msg_id is returned as it stands, never run twice. */
  async function submit(request: JobRequest, origin: string): Promise<{ created: boolean; state: JobState }> {
    const now = new Date().toISOString();
    const state: JobState = { msg_id: request.msg_id, state: "queued", request, origin, created: now, updated: now, outputs: [] };
    if (!(await store.create(state))) {
      const existing = await store.get(request.msg_id);
      // The same job again is answered with its state; another job under the same id is never
      // silently dropped (nor shown the first job's state).
      if (existing && JSON.stringify(existing.request) !== JSON.stringify(request)) {
        throw new AppError(409, "msg_id_conflict", `Another job was already submitted under msg_id ${request.msg_id}; use a new msg_id.`);
      }
      if (existing && (existing.state === "queued" || existing.state === "running") && Date.now() - Date.parse(existing.updated) > STALE_JOB_MS) {
        // Its message is gone (the isolate running it died, or the queue dropped it): nothing
        // would ever finish it. Sent again; finished outputs are kept and skipped.
        await queue.send({ type: "run", msg_id: existing.msg_id });
        await store.save(existing);
        log(`job ${existing.msg_id} was ${existing.state} with no progress since ${existing.updated}; queued again`);
        return { created: false, state: existing };
      }
      if (existing) return { created: false, state: existing };
      throw new AppError(503, "job_store_unavailable", "The job could neither be created nor read; try again.");
    }
    try {
      await queue.send({ type: "run", msg_id: request.msg_id });
    } catch (e) {
      log(`queueing ${request.msg_id} failed`, e);
      state.state = "failed";
      await store.save(state);
      throw new AppError(503, "queue_unavailable", "The job could not be queued; try again with a new msg_id.");
    }
    return { created: true, state };
  }

  /** Produces what is not produced yet; a redelivered message finds finished outputs and skips them. */
  async function run(msgId: string): Promise<void> {
    const state = await store.get(msgId);
    if (!state) return;
    if (state.state === "done" || state.state === "failed") {
      // Redelivered after the job ended: only a callback that never started is still owed.
      if (state.request.notify_url && !state.callback) await callback(msgId, 1);
      return;
    }
    state.state = "running";
    await store.save(state);
    const { request, origin } = state;
    const input = request.input_files[0].key;
    const results = new Map(state.outputs.map((o) => [o.key, o]));
    const record = async (r: OutputResult) => {
      results.set(r.key, r);
      state.outputs = request.output_files.map((o) => results.get(o.key)).filter((o): o is OutputResult => !!o);
      await store.save(state);
    };
    // Outputs of one size share a decode and resize: one Production per size.
    const bySize = new Map<string, ImageRequestKey[]>();
    for (const { key } of request.output_files) {
      const out = parseImageKey(key, Number.MAX_SAFE_INTEGER);
      // One production per variant shape: size and every option that changes the pixels.
      const size = out.size ? sizeSuffix({ ...out.size, quality: undefined }) : "full";
      bySize.set(size, [...(bySize.get(size) ?? []), out]);
    }
    const producedBy = msgId.startsWith("deferred:") ? "on-demand" : "job";
    // One invocation spends at most BACKGROUND_CPU_BUDGET_MS of predicted CPU over all its
    // outputs (each alone is checked against it too): the rest goes to a new message, which
    // skips what is finished. Ten 4096-wide WebPs of a 24 MP photo ran 46 s in one invocation,
    // past Cloudflare's 30 s.
    let spentMs = 0;
    let continued = false;
    for (const outputs of bySize.values()) {
      // Admitted after any request waiting for memory in this isolate.
      const ticket = isolateGate(config.memoryBudgetBytes, config.memoryReleaseMs).ticket("background");
      try {
        await produceSize(outputs, ticket);
      } finally {
        ticket.release();
      }
      if (continued) break;
    }
    if (continued) {
      await queue.send({ type: "run", msg_id: msgId });
      log(`job ${msgId}: ${spentMs.toFixed(0)} ms of CPU predicted in this invocation; the rest continues in a new message`);
      return;
    }
    state.state = state.outputs.every((o) => o.code === 0) ? "done" : "failed";
    await store.save(state);
    if (request.notify_url) await callback(msgId, 1);

    async function produceSize(outputs: ImageRequestKey[], ticket: Ticket): Promise<void> {
      const production = new Production(
        // Held whole while decoded: reserved in the memory gate before it is read.
        () => objects.get(input, ticket.readRoom(() => config.admissionWaitMs)),
        outputs[0].size,
        // Priced against the background share: an output whose whole-image job would take most
        // of it is written from rows, so the job leaves more room beside it to the requests it
        // holds back while due (a 1600w JPEG of a 12 MP progressive photo: 57 MiB, 72 whole).
        { maxSourcePixels: config.maxSourcePixels, maxAnimationFrames: config.maxAnimationFrames, background: backgroundFor(config, outputs[0].size), memoryBudgetBytes: backgroundShare(config.memoryBudgetBytes) },
        untimed,
      );
      for (const out of outputs) {
        if (results.get(out.key)?.code === 0) continue;
        const mime = formatSpec(out.format).mime;
        const existing = await objects.head(out.key);
        if (existing?.customMetadata.jobId === msgId) {
          const m = existing.customMetadata;
          await record({ key: out.key, code: 0, message: "ok", extra: { file_size: existing.bytes, mime, width: Number(m.width), height: Number(m.height) } });
          continue;
        }
        // A job never overwrites an object it did not create: the origin's own variant (pushed
        // while the job waited in the queue) wins. A deferred variant is then simply there.
        if (existing) {
          await record(producedBy === "on-demand" ? { key: out.key, code: 0, message: "already stored" } : { key: out.key, code: OUTPUT_CODES["output-exists"], message: "output-exists: an object this job did not create is stored under this key; delete it first to replace it" });
          continue;
        }
        const calibrated = encodeFor(config, out.format, out.size);
        const settings = {
          quality: request.params?.quality ?? calibrated.quality,
          speed: request.params?.speed ?? config.encode[out.format].speed,
          // Per-image quality unless the job names its own quality.
          ...(request.params?.quality === undefined && calibrated.target !== undefined ? { target: calibrated.target } : {}),
        };
        const predictedMs = await production
          .cost(out.format, settings)
          .then((c) => c.now.cpuMs)
          .catch(() => 0);
        if (spentMs > 0 && spentMs + predictedMs > config.backgroundCpuBudgetMs) {
          continued = true;
          return;
        }
        spentMs += predictedMs;
        try {
          // The consumer shares the isolate's memory with requests: admitted like them (after them).
          const bytes = await production.produce(ticket, out.format, settings, { memoryBytes: config.memoryBudgetBytes, cpuMs: config.backgroundCpuBudgetMs, waitMs: config.admissionWaitMs });
          const { width, height } = await production.pixels();
          const { image } = await production.source();
          // Conditional on the key still being free: R2 checks it atomically with the write.
          const stored = await objects.put(out.key, bytes, {
            contentType: mime,
            customMetadata: { format: out.format, width: String(width), height: String(height), producedBy, jobId: msgId, sourceKey: input, sourceEtag: image.etag },
            onlyIf: new Headers({ "If-None-Match": "*" }),
          });
          if (!stored) {
            await record(producedBy === "on-demand" ? { key: out.key, code: 0, message: "already stored" } : { key: out.key, code: OUTPUT_CODES["output-exists"], message: "output-exists: another object was stored under this key meanwhile" });
            continue;
          }
          // Only this output's own cache entry is stale: it was derived from the input, so unlike
          // a replaced original it changes nothing else of the stem.
          const cacheUrl = cacheKeyUrl(origin, config.cacheGeneration, out.stem, out.size, out.format);
          await cache.delete(cacheUrl);
          // A deferred variant is the worker's own: made from an original replaced meanwhile, it
          // is undone (storage/freshness); the next request produces it from the new one.
          if (producedBy === "on-demand" && (await dropIfSourceChanged(objects, cache, { sourceKey: input, sourceEtag: image.etag, cacheUrls: [cacheUrl], r2Key: out.key }))) {
            await record({ key: out.key, code: 0, message: "dropped: the original was replaced while it was produced" });
            continue;
          }
          await record({ key: out.key, code: 0, message: "ok", extra: { file_size: bytes.byteLength, mime, width, height } });
        } catch (e) {
          // Anything else (R2 unavailable...) is thrown on: the message is retried, finished outputs are kept.
          // A temporary verdict (a storage fault, a full isolate) is retried too.
          if (!(e instanceof ProductionError) || retriedInBackground(e.verdict)) throw e;
          log(`job ${msgId}: ${out.key} failed: ${e.message}`);
          await record({ key: out.key, code: codeOf(e.verdict), message: `${e.verdict}: ${e.message}` });
        }
      }
    }
  }

  /**
   * POSTs the result to notify_url; on failure, tries again later through the queue with a
   * doubling delay, up to CALLBACK_MAX_ATTEMPTS. Each attempt carries its number and is made
   * at most once: a redelivered or stale message finds it recorded and only makes sure its
   * successor was scheduled, so redeliveries can never multiply attempts.
   */
  async function callback(msgId: string, attempt: number): Promise<void> {
    const state = await store.get(msgId);
    const url = state?.request.notify_url;
    if (!state || !url) return;
    const done = state.callback;
    if (done && (done.delivered || done.gaveUp || attempt <= done.attempts)) {
      if (done.attempts === attempt && !done.delivered && !done.gaveUp && done.next !== attempt + 1) await scheduleNext(state, attempt);
      return;
    }
    const failed = state.outputs.filter((o) => o.code !== 0);
    const body = {
      msg_id: msgId,
      success: failed.length === 0,
      code: failed[0]?.code ?? 0,
      message: failed.length === 0 ? "ok" : `${failed.length} of ${state.outputs.length} outputs failed`,
      output_files: state.outputs.map((o) => ({ key: o.key, code: o.code, message: o.message, ...(o.extra ? { extra: o.extra } : {}) })),
    };
    let status = 0;
    let error: string | undefined;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "User-Agent": "edge-image-cdn-callback" },
        body: JSON.stringify(body),
        // Redirects could lead to a host the notify_url check refused.
        redirect: "manual",
        signal: AbortSignal.timeout(10_000),
      });
      status = res.status;
      await res.body?.cancel();
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    const delivered = status >= 200 && status < 300;
    const gaveUp = !delivered && attempt >= config.callbackMaxAttempts;
    state.callback = { attempts: attempt, delivered, ...(status ? { lastStatus: status } : {}), ...(delivered ? {} : { lastError: error ?? `HTTP ${status}` }), ...(gaveUp ? { gaveUp } : {}) };
    await store.save(state);
    if (!delivered && !gaveUp) await scheduleNext(state, attempt);
  }

  /** Ends a job whose message kept failing: every output not finished gets the reason. */
  async function giveUp(msgId: string, e: unknown, deliveries: number): Promise<void> {
    const state = await store.get(msgId);
    if (!state || state.state === "done" || state.state === "failed") return;
    const verdict = e instanceof ProductionError ? e.verdict : "store-error";
    const finished = new Map(state.outputs.map((o) => [o.key, o]));
    state.outputs = state.request.output_files.map(
      ({ key }) => finished.get(key) ?? { key, code: OUTPUT_CODES[verdict] ?? OUTPUT_CODES["store-error"], message: `${verdict}: gave up after ${deliveries} deliveries (${e instanceof Error ? e.message : String(e)})` },
    );
    state.state = "failed";
    await store.save(state);
    if (state.request.notify_url) await callback(msgId, 1);
  }

  async function scheduleNext(state: JobState, attempt: number): Promise<void> {
    const delaySeconds = Math.min(config.callbackRetryBaseSeconds * 2 ** (attempt - 1), 12 * 3600);
    await queue.send({ type: "callback", msg_id: state.msg_id, attempt: attempt + 1 }, { delaySeconds });
    state.callback = { ...state.callback!, next: attempt + 1 };
    await store.save(state);
  }

  return {
    submit,
    get: store.get,
    /** Queues the slow re-encode of a stored on-demand variant (jobs/reencode). */
    async requestReencode(key: string, origin: string): Promise<void> {
      await queue.send({ type: "reencode", key, origin });
    },
    /** Queue consumer: one message at a time; a message that throws is retried by the queue. */
    async consume(batch: MessageBatch<JobMessage>): Promise<void> {
      for (const msg of batch.messages) {
        try {
          if (msg.body.type === "run") await run(msg.body.msg_id);
          else if (msg.body.type === "reencode") log(`re-encode of ${msg.body.key}: ${JSON.stringify(await reencode({ config, store: objects, cache }, msg.body.key, msg.body.origin))}`);
          else await callback(msg.body.msg_id, msg.body.attempt);
          msg.ack();
        } catch (e) {
          // A temporary failure (R2, a full isolate): retried with a doubling delay, but only
          // so many times; then the job ends as failed and says why, and its callback is made.
          if (msg.attempts >= config.jobMaxDeliveries) {
            log(`job message ${JSON.stringify(msg.body)} failed ${msg.attempts} times; giving up`, e);
            try {
              if (msg.body.type === "run") await giveUp(msg.body.msg_id, e, msg.attempts);
              // A re-encode given up on leaves the fast variant in place; a later view may queue it again.
            } catch (again) {
              log(`job message ${JSON.stringify(msg.body)}: recording the failure failed too`, again);
            }
            msg.ack();
            continue;
          }
          log(`job message ${JSON.stringify(msg.body)} failed; retrying`, e);
          msg.retry({ delaySeconds: Math.min(config.callbackRetryBaseSeconds * 2 ** (msg.attempts - 1), 3600) });
        }
      }
    },
  };
}

export type JobService = ReturnType<typeof jobService>;
