/**
 * Honest status codes (issue 13) against real R2 with injected faults: the chain degrades to the
 * next tier and the next candidate, answers 503 with Retry-After when nothing can be served now
 * but may be later, and never turns an R2 fault into a 404 or a 500.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import worker from "../src/index";
import { call, encodeTo, faultyBucket, fixture, gradient, put, uniquePrefix, until } from "./helpers";

const json = (body: ArrayBuffer) => JSON.parse(new TextDecoder().decode(body));
const TOKEN = "test-token-0123456789abcdef";
const received = async (tag: string) => (await fetch(`${inject("callbackUrl")}/received/${tag}`)).json() as Promise<{ status: number; body: any; at: number }[]>;

async function original(): Promise<string> {
  const stem = `${uniquePrefix()}/cover`;
  await put(`${stem}.jpg`, await encodeTo("jpg", gradient(320, 240)));
  return stem;
}

describe("R2 faults", () => {
  it("R2 reads failing: 503 with Retry-After, no-store and the verdicts; never 404 or 500", async () => {
    const stem = await original();
    const { res, body } = await call(`/${stem}_100_0.jpg?caplist=webp,jpg`, {}, { IMAGES: faultyBucket(env.IMAGES, { get: true, list: true }) });
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(res.headers.get("X-Image-Tried")).toBe("webp=store-error,jpg=store-error");
    expect(json(body)).toMatchObject({ error: "temporarily_unavailable", candidates: [{ format: "webp", verdict: "store-error" }, { format: "jpg", verdict: "store-error" }] });
    // The same request with R2 back: served.
    expect((await call(`/${stem}_100_0.jpg?caplist=webp,jpg`)).image).toEqual({ format: "webp", width: 100, height: 75 });
  });

  it("a failing list (the search for another original) is a 503, not 'no source'", async () => {
    const stem = `${uniquePrefix()}/only-png`;
    await put(`${stem}.png`, await encodeTo("png", gradient(64, 48)));
    const { res } = await call(`/${stem}.jpg?caplist=webp`, {}, { IMAGES: faultyBucket(env.IMAGES, { list: true }) });
    expect(res.status).toBe(503);
    expect((await call(`/${stem}.jpg?caplist=webp`)).image).toEqual({ format: "webp", width: 64, height: 48 });
  });

  it("a failing read of a pre-produced variant falls through to producing it from the original", async () => {
    const stem = await original();
    await put(`${stem}_100_0.webp`, await encodeTo("webp", gradient(100, 75)));
    const { res, image } = await call(`/${stem}_100_0.jpg?caplist=webp`, {}, { IMAGES: faultyBucket(env.IMAGES, { get: (k) => k.endsWith("_100_0.webp") }) });
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Image-Tried")).toBe("webp=transcode");
    expect(image).toEqual({ format: "webp", width: 100, height: 75 });
  });

  it("failing writes (write-back, purge index) do not fail the response; a cache hit needs no R2 at all", async () => {
    const stem = await original();
    const first = await call(`/${stem}_120_0.jpg?caplist=avif`, {}, { IMAGES: faultyBucket(env.IMAGES, { put: true }) });
    expect(first.res.status).toBe(200);
    expect(first.image).toEqual({ format: "avif", width: 120, height: 90 });
    expect(await env.IMAGES.head(`${stem}_120_0.avif`)).toBeNull();
    const hit = await call(`/${stem}_120_0.jpg?caplist=avif`, {}, { IMAGES: faultyBucket(env.IMAGES, { get: true, head: true, put: true, list: true }) });
    expect(hit.res.status).toBe(200);
    expect(hit.res.headers.get("X-Image-Source")).toBe("cache");
  });
});

describe("status codes and validators", () => {
  it("a HEIC whose only candidate must wait for the queue answers 503 + Retry-After, then 200", async () => {
    const stem = `${uniquePrefix()}/pug`;
    await put(`${stem}.heic`, fixture("pug"));
    // The platform's CPU limit (here 1 s) is too short to produce it in the request.
    const first = await call(`/${stem}_800_0.heic?caplist=avif`, {}, { CPU_LIMIT_MS: "1000" });
    expect(first.res.status).toBe(503);
    expect(first.res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(first.res.headers.get("X-Image-Tried")).toBe("avif=over-cpu-budget");
    await until("deferred AVIF", () => env.IMAGES.head(`${stem}_800_0.avif`), (o) => o !== null);
    const second = await call(`/${stem}_800_0.heic?caplist=avif`, {}, { CPU_LIMIT_MS: "1000" });
    expect(second.res.status).toBe(200);
    expect(second.image).toEqual({ format: "avif", width: 800, height: 600 });
  });

  it("a candidate deferred for CPU that then fails for good (a broken file) is a 404, and nothing is queued", async () => {
    const stem = `${uniquePrefix()}/broken`;
    const jpeg = new Uint8Array(await encodeTo("jpg", gradient(320, 240)));
    // The header is intact, the entropy-coded data is cut: decoding fails, the header does not.
    await put(`${stem}.jpg`, jpeg.slice(0, jpeg.length >> 1).buffer);
    const { res } = await call(`/${stem}_100_0.jpg?caplist=webp`, {}, { CPU_BUDGET_MS: "1" });
    expect(res.status).toBe(404);
    expect(res.headers.get("X-Image-Tried")).toBe("webp=decode-error");
    expect((await env.IMAGES.list({ prefix: `_cdn/jobs/${encodeURIComponent(`deferred:${stem}`)}` })).objects).toEqual([]);
  });

  it("Chrome's Accept on a .heic URL gets AVIF, never image/heic", async () => {
    const stem = `${uniquePrefix()}/rainbow`;
    await put(`${stem}.heic`, fixture("rainbowHeic"));
    const { res, image } = await call(`/${stem}.heic`, { headers: { Accept: "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8" } });
    expect(res.headers.get("Content-Type")).toBe("image/avif");
    expect(image).toEqual({ format: "avif", width: 451, height: 461 });
  });

  it("one ETag per variant: the transcode's, and the same from the R2 copy written back", async () => {
    const stem = await original();
    // EDGE_TTL=0 keeps it out of the edge cache, so the second answer comes from R2.
    const first = await call(`/${stem}_160_0.jpg?caplist=avif`, {}, { EDGE_TTL: "0" });
    expect(first.res.headers.get("X-Image-Source")).toBe("transcode");
    await until("write-back", () => env.IMAGES.head(`${stem}_160_0.avif`), (o) => o !== null);
    const second = await call(`/${stem}_160_0.jpg?caplist=avif`, {}, { EDGE_TTL: "0" });
    expect(second.res.headers.get("X-Image-Source")).toBe("r2");
    expect(second.res.headers.get("ETag")).toBe(first.res.headers.get("ETag"));
    const revalidated = await call(`/${stem}_160_0.jpg?caplist=avif`, { headers: { "If-None-Match": first.res.headers.get("ETag")! } }, { EDGE_TTL: "0" });
    expect(revalidated.res.status).toBe(304);
  });
});

describe("queue consumer faults", () => {
  it("a job whose output R2 refuses to store is retried with doubling delays and ends failed after JOB_MAX_DELIVERIES, with its callback", async () => {
    const stem = await original();
    const msg_id = `r2down-${uniquePrefix()}`;
    const tag = `ok-${msg_id}`;
    const outKey = `${stem}_64_0.webp`;
    // The queue loses the job's first message (an injected fault), so this test delivers it.
    const sent: unknown[] = [];
    const droppingQueue = { send: async (m: unknown) => void sent.push(m), sendBatch: async () => {} };
    const posted = await call(
      "/_api/jobs",
      { method: "POST", body: JSON.stringify({ msg_id, notify_url: `${inject("callbackUrl")}/cb/${tag}`, cmd: "transcode", input_files: [{ key: `${stem}.jpg` }], output_files: [{ key: outKey }] }), headers: { Authorization: `Bearer ${TOKEN}` } },
      { JOBS: droppingQueue },
    );
    expect(posted.res.status).toBe(202);
    expect(sent).toEqual([{ type: "run", msg_id }]);

    let outputPuts = 0;
    const bucket = faultyBucket(env.IMAGES, { put: (k) => k === outKey && ++outputPuts > 0 });
    const delays: (number | undefined)[] = [];
    for (let attempts = 1; attempts <= 5; attempts++) {
      const batch = createMessageBatch("edge-image-cdn-jobs", [{ id: `d${attempts}`, timestamp: new Date(), attempts, body: { type: "run", msg_id } }]);
      const ctx = createExecutionContext();
      // The harness does not report retry delays; the message's own retry() is watched for them.
      const message = batch.messages[0];
      const retry = message.retry.bind(message);
      message.retry = (o?: QueueRetryOptions) => {
        delays.push(o?.delaySeconds);
        retry(o);
      };
      await worker.queue(batch as never, { ...env, IMAGES: bucket } as never);
      const result = await getQueueResult(batch, ctx);
      if (attempts < 5) {
        expect(result.retryMessages.map((m: { msgId: string }) => m.msgId), `delivery ${attempts}`).toEqual([`d${attempts}`]);
      } else {
        // The fifth failure ends it: acknowledged, never redelivered again.
        expect(result.explicitAcks).toEqual(["d5"]);
        expect(result.retryMessages).toEqual([]);
      }
    }
    // CALLBACK_RETRY_BASE_SECONDS is 1 in the tests: 1, 2, 4, 8.
    expect(delays).toEqual([1, 2, 4, 8]);
    expect(outputPuts).toBe(5);
    expect(await env.IMAGES.head(outKey)).toBeNull();
    expect(await env.IMAGES.head(`${stem}.jpg`)).not.toBeNull();
    const state = json((await call(`/_api/jobs/${encodeURIComponent(msg_id)}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).body);
    expect(state).toMatchObject({ state: "failed", outputs: [{ key: outKey, code: 1011, message: expect.stringMatching(/^store-error: gave up after 5 deliveries/) }] });
    const calls = await until("the callback", () => received(tag), (c) => c.length >= 1);
    expect(calls[0].body).toMatchObject({ msg_id, success: false, code: 1011 });
    // A late redelivery of the same message changes nothing and makes no second callback.
    const late = createMessageBatch("edge-image-cdn-jobs", [{ id: "late", timestamp: new Date(), attempts: 6, body: { type: "run", msg_id } }]);
    const ctx = createExecutionContext();
    await worker.queue(late as never, { ...env, IMAGES: bucket } as never);
    expect((await getQueueResult(late, ctx)).explicitAcks).toEqual(["late"]);
    expect(outputPuts).toBe(5);
    expect((await received(tag)).length).toBe(1);
  });
});
