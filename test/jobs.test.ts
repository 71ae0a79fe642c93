/**
 * Async pre-production jobs on a real Queue (miniflare), real R2, and a real HTTP callback
 * receiver on loopback. Every output produced is read back from R2 and decoded.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import worker from "../src/index";
import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import { call, decodedImage, encodeTo, fixture, gradient, put, uniquePrefix, until, type Fetched } from "./helpers";

const TOKEN = "test-token-0123456789abcdef";
const json = (f: Fetched) => JSON.parse(new TextDecoder().decode(f.body));
const postJob = (body: unknown) =>
  call("/_api/jobs", { method: "POST", body: JSON.stringify(body), headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" } });
const status = async (id: string) => json(await call(`/_api/jobs/${encodeURIComponent(id)}`, { headers: { Authorization: `Bearer ${TOKEN}` } }));

const received = async (tag: string) => (await fetch(`${inject("callbackUrl")}/received/${tag}`)).json() as Promise<{ status: number; body: any; at: number }[]>;

async function original(): Promise<{ stem: string; key: string }> {
  const stem = `${uniquePrefix()}/cover`;
  await put(`${stem}.png`, fixture("kodim23Png"));
  return { stem, key: `${stem}.png` };
}

describe("jobs never overwrite what they did not create", () => {
  it("an output already stored by the origin is left as it is (1012 output-exists)", async () => {
    const { stem, key } = await original();
    const theirs = await encodeTo("webp", gradient(64, 64));
    await put(`${stem}_64_64.webp`, theirs);
    const msg_id = `keep-${uniquePrefix()}`;
    expect((await postJob({ msg_id, cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_64_64.webp` }, { key: `${stem}_32_32.webp` }] })).res.status).toBe(202);
    const done = await until("job done", () => status(msg_id), (s) => s.state === "done" || s.state === "failed");
    expect(done.outputs.map((o: { key: string; code: number }) => [o.key, o.code])).toEqual([[`${stem}_64_64.webp`, 1012], [`${stem}_32_32.webp`, 0]]);
    const stored = await env.IMAGES.get(`${stem}_64_64.webp`);
    expect(new Uint8Array(await stored!.arrayBuffer())).toEqual(new Uint8Array(theirs));
    expect(stored!.customMetadata?.producedBy).toBeUndefined();
  });
});

describe("job ids, callback hosts and bounded callbacks (issue 14)", () => {
  it("another job under an existing msg_id is a 409 that shows nothing of the first; the same job again is 200", async () => {
    const { stem, key } = await original();
    const msg_id = `dup-${uniquePrefix()}`;
    const first = { msg_id, cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_20_20.webp` }] };
    expect((await postJob(first)).res.status).toBe(202);
    const other = await call("/_api/jobs", { method: "POST", body: JSON.stringify({ ...first, output_files: [{ key: `${stem}_30_30.webp` }] }), headers: { Authorization: "Bearer rotated-token-fedcba9876543210" } });
    expect(other.res.status).toBe(409);
    expect(json(other)).toEqual({ error: "msg_id_conflict", message: expect.any(String) });
    expect(JSON.stringify(json(other))).not.toContain("_20_20");
    expect((await postJob(first)).res.status).toBe(200);
  });

  it("refuses callback hosts on loopback, link-local, private networks, metadata names and with credentials", async () => {
    const { stem, key } = await original();
    const hosts = ["http://127.0.0.1/cb", "http://localhost/cb", "http://169.254.169.254/latest", "http://[::1]/cb", "http://0.0.0.0/", "http://2130706433/", "http://0x7f.1/", "http://metadata.google.internal/", "https://user:pass@example.com/cb", "http://10.1.2.3/", "http://192.168.0.1/", "http://[fd00::1]/", "http://[::ffff:127.0.0.1]/"];
    for (const notify_url of hosts) {
      const res = await call(
        "/_api/jobs",
        { method: "POST", body: JSON.stringify({ msg_id: `h-${uniquePrefix()}`, notify_url, cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_9_9.webp` }] }), headers: { Authorization: `Bearer ${TOKEN}` } },
        { CALLBACK_PRIVATE_HOSTS: "off" },
      );
      expect(res.res.status, notify_url).toBe(400);
    }
    const ok = await call(
      "/_api/jobs",
      { method: "POST", body: JSON.stringify({ msg_id: `h-${uniquePrefix()}`, notify_url: "https://origin.example.com/cb", cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_9_9.webp` }] }), headers: { Authorization: `Bearer ${TOKEN}` } },
      { CALLBACK_PRIVATE_HOSTS: "off" },
    );
    expect(ok.res.status).toBe(202);
  });

  it("a callback that always fails stops after CALLBACK_MAX_ATTEMPTS (4 here), and redelivered or stale attempts are never made again", async () => {
    const { stem, key } = await original();
    const msg_id = `down-${uniquePrefix()}`;
    const tag = `fail-99-${msg_id}`;
    await postJob({ msg_id, notify_url: `${inject("callbackUrl")}/cb/${tag}`, cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_16_16.webp` }] });
    const s = await until("gave up", () => status(msg_id), (st) => st.callback?.gaveUp === true, 60_000);
    expect(s.callback).toMatchObject({ attempts: 4, delivered: false, gaveUp: true });
    expect((await received(tag)).length).toBe(4);
    // The queue redelivers old messages: each is acknowledged and makes no request.
    const batch = createMessageBatch("edge-image-cdn-jobs", [2, 4, 5].map((attempt, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 2, body: { type: "callback", msg_id, attempt } })));
    const ctx = createExecutionContext();
    await worker.queue(batch as never, env as never);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.length).toBe(3);
    expect(result.retryMessages.length).toBe(0);
    expect((await received(tag)).length).toBe(4);
    expect((await status(msg_id)).callback.attempts).toBe(4);
  });

  it("a callback host that refuses connections is tried a bounded number of times", async () => {
    const { stem, key } = await original();
    const msg_id = `refused-${uniquePrefix()}`;
    await postJob({ msg_id, notify_url: "http://127.0.0.1:1/cb", cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_16_16.webp` }] });
    const s = await until("gave up", () => status(msg_id), (st) => st.callback?.gaveUp === true, 60_000);
    expect(s.callback).toMatchObject({ attempts: 4, delivered: false, gaveUp: true, lastError: expect.any(String) });
  });
});

describe("POST /_api/jobs", () => {
  it("produces every output into R2, reports them, and calls back", async () => {
    const { stem, key } = await original();
    const msg_id = `job-${uniquePrefix()}`;
    const tag = `ok-${msg_id}`;
    const outputs = [`${stem}_405_540.avif`, `${stem}_405_540.webp`, `${stem}_300_0.jpg`, `${stem}.webp`];
    const res = await postJob({
      msg_id,
      notify_url: `${inject("callbackUrl")}/cb/${tag}`,
      priority: 1,
      cmd: "transcode",
      input_files: [{ key }],
      output_files: outputs.map((k) => ({ key: k })),
    });
    expect(res.res.status).toBe(202);
    expect(json(res)).toEqual({ msg_id, success: true });

    const done = await until("job done", () => status(msg_id), (s) => s.state === "done" || s.state === "failed");
    expect(done.state).toBe("done");
    expect(done.outputs.map((o: { key: string; code: number }) => [o.key, o.code])).toEqual(outputs.map((k) => [k, 0]));

    // 405x540 of a 768x512 source: the 3:4 crop is 384x512, and nothing is upscaled.
    const expected: Record<string, [string, number, number]> = {
      [outputs[0]]: ["avif", 384, 512],
      [outputs[1]]: ["webp", 384, 512],
      [outputs[2]]: ["jpg", 300, 200],
      [outputs[3]]: ["webp", 768, 512],
    };
    for (const k of outputs) {
      const obj = await env.IMAGES.get(k);
      expect(obj, k).not.toBeNull();
      expect(obj!.customMetadata).toMatchObject({ producedBy: "job", jobId: msg_id });
      const [format, width, height] = expected[k];
      expect(await decodedImage(await obj!.arrayBuffer())).toEqual({ format, width, height });
    }
    // Delivery finds them as pre-produced variants.
    const served = await call(`/${stem}_405_540.png?caplist=avif`);
    expect(served.res.headers.get("X-Image-Source")).toBe("r2");

    const calls = await until("callback", () => received(tag), (c) => c.length > 0);
    expect(calls[0].status).toBe(200);
    expect(calls[0].body).toMatchObject({ msg_id, success: true, code: 0 });
    expect(calls[0].body.output_files).toHaveLength(4);
    expect(calls[0].body.output_files[0]).toEqual({
      key: outputs[0],
      code: 0,
      message: "ok",
      extra: { file_size: expect.any(Number), mime: "image/avif", width: 384, height: 512 },
    });
  });

  it("is idempotent on msg_id: the same job again is a 200 with its status and no second production", async () => {
    const { stem, key } = await original();
    const msg_id = `dup-${uniquePrefix()}`;
    const body = { msg_id, cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_100_100.webp` }] };
    expect((await postJob(body)).res.status).toBe(202);
    await until("job done", () => status(msg_id), (s) => s.state === "done");
    const first = await env.IMAGES.head(`${stem}_100_100.webp`);
    const again = await postJob(body);
    expect(again.res.status).toBe(200);
    expect(json(again)).toMatchObject({ msg_id, state: "done" });
    await new Promise((r) => setTimeout(r, 1500));
    const second = await env.IMAGES.head(`${stem}_100_100.webp`);
    expect(second!.uploaded.getTime()).toBe(first!.uploaded.getTime());
  });

  it("a job whose message was lost is queued again when submitted again, and ends", async () => {
    const { stem, key } = await original();
    const msg_id = `lost-${uniquePrefix()}`;
    const body = { msg_id, cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_90_90.webp` }] };
    // A queue that accepts the message and loses it (an injected fault).
    const lost = await call("/_api/jobs", { method: "POST", body: JSON.stringify(body), headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" } }, { JOBS: { send: async () => {} } });
    expect(lost.res.status).toBe(202);
    // Submitted again soon, it is answered as it stands (it may just be waiting its turn).
    expect(json(await postJob(body))).toMatchObject({ state: "queued" });
    // Eleven minutes later nothing has touched it: its message is gone.
    const stateKey = `_cdn/jobs/${encodeURIComponent(msg_id)}.json`;
    const state = JSON.parse(await (await env.IMAGES.get(stateKey))!.text());
    state.updated = new Date(Date.now() - 11 * 60_000).toISOString();
    await env.IMAGES.put(stateKey, JSON.stringify(state));
    const again = await postJob(body);
    expect(again.res.status).toBe(200);
    const done = await until("job done", () => status(msg_id), (s) => s.state === "done");
    expect(done.outputs).toMatchObject([{ key: `${stem}_90_90.webp`, code: 0 }]);
    const stored = await env.IMAGES.get(`${stem}_90_90.webp`);
    expect(await decodedImage(await stored!.arrayBuffer())).toEqual({ format: "webp", width: 90, height: 90 });
  });

  it("reports a failing output while the others succeed, and the callback says which", async () => {
    // 9 MP: small variants fit the budgets, a full-size AVIF (~340 MB of encoder memory) does not.
    const stem = `${uniquePrefix()}/big`;
    const key = `${stem}.png`;
    await put(key, await encodeTo("png", gradient(3000, 3000)));
    const msg_id = `part-${uniquePrefix()}`;
    const tag = `part-${msg_id}`;
    const res = await postJob({
      msg_id,
      notify_url: `${inject("callbackUrl")}/cb/${tag}`,
      cmd: "transcode",
      params: { quality: 40 },
      input_files: [{ key }],
      output_files: [{ key: `${stem}_200_0.avif` }, { key: `${stem}.avif` }, { key: `${stem}_100_0.jpg` }],
    });
    expect(res.res.status).toBe(202);
    const done = await until("job finished", () => status(msg_id), (s) => s.state === "done" || s.state === "failed");
    expect(done.state).toBe("failed");
    const codes = Object.fromEntries(done.outputs.map((o: { key: string; code: number }) => [o.key, o.code]));
    expect(codes[`${stem}_200_0.avif`]).toBe(0);
    expect(codes[`${stem}_100_0.jpg`]).toBe(0);
    expect(codes[`${stem}.avif`]).not.toBe(0);
    expect(await env.IMAGES.head(`${stem}_200_0.avif`)).not.toBeNull();
    expect(await env.IMAGES.head(`${stem}.avif`)).toBeNull();
    const calls = await until("callback", () => received(tag), (c) => c.length > 0);
    expect(calls[0].body).toMatchObject({ msg_id, success: false });
    expect(calls[0].body.output_files.find((o: { key: string }) => o.key === `${stem}.avif`).message).toMatch(/memory/);
  });

  it("retries a failing callback with backoff and records every attempt", async () => {
    const { stem, key } = await original();
    const msg_id = `retry-${uniquePrefix()}`;
    const tag = `fail-2-${msg_id}`;
    await postJob({ msg_id, notify_url: `${inject("callbackUrl")}/cb/${tag}`, cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_64_64.webp` }] });
    const calls = await until("three deliveries", () => received(tag), (c) => c.length >= 3, 90_000);
    expect(calls.map((c) => c.status)).toEqual([500, 500, 200]);
    // Backoff: each wait at least as long as the one before.
    expect(calls[2].at - calls[1].at).toBeGreaterThanOrEqual(calls[1].at - calls[0].at - 250);
    const s = await until("callback recorded", () => status(msg_id), (st) => st.callback?.delivered === true);
    expect(s.callback).toMatchObject({ delivered: true, attempts: 3 });
  });

  it("refuses invalid jobs up front with JSON errors", async () => {
    const { stem, key } = await original();
    const ok = { msg_id: `bad-${uniquePrefix()}`, cmd: "transcode", input_files: [{ key }], output_files: [{ key: `${stem}_10_10.webp` }] };
    const cases: [unknown, number, string][] = [
      ["not an object", 400, "bad_job"],
      [{ ...ok, msg_id: "" }, 400, "bad_job"],
      [{ ...ok, cmd: "resize" }, 400, "bad_job"],
      [{ ...ok, input_files: [] }, 400, "bad_job"],
      [{ ...ok, output_files: [] }, 400, "bad_job"],
      [{ ...ok, output_files: [{ key: "a/../b.webp" }] }, 400, "bad_key"],
      [{ ...ok, output_files: [{ key: `${stem}_10_10.heic` }] }, 422, "not_encodable"],
      [{ ...ok, output_files: [{ key: `${stem}_99999_10.webp` }] }, 400, "bad_size"],
      [{ ...ok, params: { quality: 500 } }, 400, "bad_job"],
      [{ ...ok, notify_url: "ftp://example.com/x" }, 400, "bad_job"],
      [{ ...ok, input_files: [{ key: `${uniquePrefix()}/missing.png` }] }, 404, "input_not_found"],
    ];
    for (const [body, code, error] of cases) {
      const res = await call("/_api/jobs", { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), headers: { Authorization: `Bearer ${TOKEN}` } });
      expect(res.res.status, JSON.stringify(body)).toBe(code);
      expect(json(res), JSON.stringify(body)).toMatchObject({ error, message: expect.any(String) });
    }
    expect((await call("/_api/jobs", { method: "POST", body: JSON.stringify(ok) })).res.status).toBe(401);
    expect((await call(`/_api/jobs/nope-${uniquePrefix()}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).res.status).toBe(404);
  });
});

describe("budget-deferred production goes through the same queue", () => {
  it("a format over the request's CPU budget is queued once and lands in R2", async () => {
    const stem = `${uniquePrefix()}/cover`;
    await put(`${stem}.jpg`, await encodeTo("jpg", gradient(640, 480)));
    // A small AVIF written back to R2 on demand (the default) before the deferred job runs.
    expect((await call(`/${stem}_64_48.jpg?caplist=avif`)).res.headers.get("X-Image-Tried")).toBe("avif=transcode");
    expect(await env.IMAGES.head(`${stem}_64_48.avif`)).not.toBeNull();
    // The encoders' own CPU alone (no per-image quality): AVIF over 100 ms, WebP within.
    const vars = { CPU_BUDGET_MS: "100", PER_IMAGE_QUALITY: "" };
    const first = await call(`/${stem}.jpg?caplist=avif,webp`, {}, vars);
    expect(first.res.headers.get("X-Image-Tried")).toBe("avif=over-cpu-budget,webp=transcode");
    // A second request before the job ran does not queue it again (one job per variant).
    await call(`/${stem}.jpg?caplist=avif,webp`, {}, vars);
    const obj = await until("deferred AVIF", () => env.IMAGES.head(`${stem}.avif`), (o) => o !== null);
    // Produced from this request's source, and marked like on-demand results so a new original purges it.
    const source = await env.IMAGES.head(`${stem}.jpg`);
    const jobId = `deferred:${stem}.avif@${source!.etag}`;
    expect(obj!.customMetadata).toMatchObject({ producedBy: "on-demand", jobId });
    expect((await status(jobId)).state).toBe("done");
    // A derived output stales only its own cache entry: the stem's other variants are kept.
    expect(await env.IMAGES.head(`${stem}_64_48.avif`)).not.toBeNull();
    expect((await call(`/${stem}_64_48.jpg?caplist=avif`)).res.headers.get("X-Image-Source")).toBe("cache");
    const next = await call(`/${stem}.jpg?caplist=avif,webp`, {}, vars);
    expect(next.res.headers.get("X-Image-Tried")).toBe("avif=r2");
    expect(next.image).toEqual({ format: "avif", width: 640, height: 480 });
  });
});

describe("one job's CPU per invocation (issue 30)", () => {
  it("outputs whose predictions together pass BACKGROUND_CPU_BUDGET_MS continue in new messages, and the job ends with all", async () => {
    const { stem, key } = await original();
    const msg_id = `split-${uniquePrefix()}`;
    const outputs = [`${stem}_300_0.webp`, `${stem}_301_0.webp`, `${stem}_302_0.webp`];
    // One output's predicted CPU, from the same cost model the consumer uses.
    const sent: unknown[] = [];
    // The queue records what is sent and delivers nothing: this test delivers by hand.
    const recording = { send: async (m: unknown) => void sent.push(m) };
    const { loadConfig } = await import("../src/config");
    const { Production } = await import("../src/produce/pipeline");
    const { r2Store } = await import("../src/storage/r2");
    const config = loadConfig(env as never);
    const production = new Production(() => r2Store(env.IMAGES).get(key), { width: 300, height: 0 }, { maxSourcePixels: config.maxSourcePixels, maxAnimationFrames: config.maxAnimationFrames, background: config.flattenBackground }, { time: (_s, fn) => fn() });
    const one = (await production.cost("webp", config.encode.webp)).now.cpuMs;
    // Room for one output per invocation, not two.
    const budget = String(Math.ceil(1.5 * one));
    const vars = { ...env, JOBS: recording, BACKGROUND_CPU_BUDGET_MS: budget };
    const posted = await call("/_api/jobs", { method: "POST", body: JSON.stringify({ msg_id, cmd: "transcode", input_files: [{ key }], output_files: outputs.map((k) => ({ key: k })) }), headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" } }, vars);
    expect(posted.res.status).toBe(202);
    expect(sent).toEqual([{ type: "run", msg_id }]);
    for (let invocation = 1; invocation <= 3; invocation++) {
      const batch = createMessageBatch("edge-image-cdn-jobs", [{ id: `s${invocation}`, timestamp: new Date(), attempts: 1, body: sent[sent.length - 1] }]);
      const ctx = createExecutionContext();
      await worker.queue(batch as never, vars as never);
      const result = await getQueueResult(batch, ctx);
      expect(result.explicitAcks.length).toBe(1);
      const state = await status(msg_id);
      expect(state.outputs.filter((o: { code: number }) => o.code === 0)).toHaveLength(invocation);
      // Unfinished, it was handed to a new message; finished, it is done and nothing more is sent.
      expect(sent).toHaveLength(invocation < 3 ? invocation + 1 : 3);
      expect(state.state).toBe(invocation < 3 ? "running" : "done");
    }
    for (const [i, k] of outputs.entries()) expect(await decodedImage(await (await env.IMAGES.get(k))!.arrayBuffer())).toEqual({ format: "webp", width: 300 + i, height: Math.round(((300 + i) * 512) / 768) });
  });
});
