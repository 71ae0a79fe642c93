/**
 * A stream of requests (issue 29). Codec instances live for the isolate (codecs/resident): a
 * job reuses the memory of the one before instead of waiting for V8 to collect its garbage, and
 * a reused instance computes exactly what a fresh one would. A long production gives the event
 * loop turns (produce/yield), so a request that arrives meanwhile is answered before it ends.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { wasmModules } from "../wasm/modules";
import { CodecSession } from "../src/produce/codec-session";
import { drainIdle, idleBytes, idleCount } from "../src/codecs/resident";
import { isolateGate, MemoryGate } from "../src/produce/admission";
import worker from "../src/index";
import { bytesEqual, call, encodeTo, faultyBucket, fixture, gradient, ORIGIN, put, uniquePrefix } from "./helpers";

const MiB = 2 ** 20;
const PARTS = [
  { module: wasmModules.jpeg, bytes: 8e6 },
  { module: wasmModules.webpAnim, bytes: 20e6 },
];

let source: ArrayBuffer | undefined;

/** One job through a gate: an 800x600 JPEG decoded and encoded as WebP by a session of its own. */
async function job(gate: MemoryGate, bytes = 64 * MiB) {
  source ??= await encodeTo("jpg", gradient(800, 600));
  const session = new CodecSession();
  const ticket = gate.ticket();
  await ticket.ensure(bytes, 0, PARTS, session);
  const used = gate.usedBytes;
  try {
    const pixels = await session.decode("jpg", source);
    const webp = await session.encode("webp", pixels, { quality: 80, speed: 4 });
    return { pixels, webp, used };
  } finally {
    ticket.release();
  }
}

describe("resident codec instances", () => {
  it("a reused instance decodes and encodes exactly as a fresh one, in the memory it already has", async () => {
    drainIdle();
    const gate = new MemoryGate(256 * MiB, 0);
    const first = await job(gate);
    // The JPEG decoder and the WebP encoder went back idle, reset.
    expect(idleCount()).toBe(2);
    const idle = idleBytes();
    // Two shared memories, each at least a fresh one's 2 MiB (codecs/standalone INITIAL_PAGES).
    expect(idle).toBeGreaterThanOrEqual(4 * MiB);
    const second = await job(gate);
    expect(bytesEqual(second.webp, first.webp)).toBe(true);
    expect(bytesEqual(second.pixels.data.buffer as ArrayBuffer, first.pixels.data.buffer as ArrayBuffer)).toBe(true);
    // The same two instances, no larger than before: nothing was allocated anew.
    expect(idleCount()).toBe(2);
    expect(idleBytes()).toBe(idle);
  });

  it("the gate lends idle instances: a job adds only what they must grow by, never the last job's garbage", async () => {
    drainIdle();
    // Released memory that is not kept counts for a minute: only reuse lets the second job in.
    const gate = new MemoryGate(110 * MiB, 60_000);
    await job(gate, 64 * MiB);
    const idle = idleBytes();
    // What stays counted is the job's measured high-water mark, most of it now idle instances.
    expect(gate.usedBytes).toBeLessThan(64 * MiB);
    expect(gate.garbageBytes).toBeLessThan(gate.usedBytes - idle + 1);
    // 64 MiB more would not fit beside 64 MiB counted; lent the idle instances (up to the
    // parts' 28 MB), it does at once.
    const second = await job(gate, 64 * MiB);
    expect(second.used).toBeLessThanOrEqual(2 * 64 * MiB - Math.min(idle, 26 * MiB));
    expect(gate.peakUsedBytes).toBeLessThanOrEqual(110 * MiB);
    expect(idleBytes()).toBe(idle);
  });

  it("a background job larger than the background share runs alone, lent idle memory or not", async () => {
    drainIdle();
    // 30 MiB: background jobs share 20 MiB; one larger runs when nothing else holds memory.
    const gate = new MemoryGate(30 * MiB, 0);
    await job(gate, 8 * MiB);
    expect(idleCount()).toBe(2);
    // 21 MiB, part of it the two idle instances lent: what it adds fits the share, its whole
    // does not. It was held to the share and refused, alone as it was (the soak's async jobs).
    const session = new CodecSession();
    const ticket = gate.ticket("background");
    await ticket.ensure(21 * MiB, 0, PARTS, session);
    expect(gate.usedBytes).toBeGreaterThan(20 * MiB);
    expect(gate.usedBytes).toBeLessThanOrEqual(30 * MiB);
    ticket.release();
  });

  it("a memory an exception went through serves the next job exactly as a fresh one", async () => {
    drainIdle();
    const gate = new MemoryGate(256 * MiB, 0);
    const first = await job(gate);
    const session = new CodecSession();
    const ticket = gate.ticket();
    await ticket.ensure(32 * MiB, 0, PARTS, session);
    await expect(session.decode("jpg", fixture("corruptHeaderJpeg"))).rejects.toThrow(/jpg decode failed/);
    ticket.release();
    // The decoder's memory is kept (only its instance is dropped) and the next job decodes and
    // encodes exactly as before.
    expect(idleCount()).toBe(2);
    const next = await job(gate);
    expect(bytesEqual(next.pixels.data.buffer as ArrayBuffer, first.pixels.data.buffer as ArrayBuffer)).toBe(true);
    expect(bytesEqual(next.webp, first.webp)).toBe(true);
  });

  it("a job of another codec runs in the memory the last job grew", async () => {
    drainIdle();
    const gate = new MemoryGate(256 * MiB, 0);
    source ??= await encodeTo("jpg", gradient(800, 600));
    const decodeAlone = async (format: "jpg" | "webp", bytes: ArrayBuffer, module: WebAssembly.Module) => {
      const session = new CodecSession();
      const ticket = gate.ticket();
      await ticket.ensure(16 * MiB, 0, [{ module, bytes: 4e6 }], session);
      try {
        return await session.decode(format, bytes);
      } finally {
        ticket.release();
      }
    };
    await decodeAlone("jpg", source, wasmModules.jpeg);
    // One memory, idle: libjpeg-turbo's.
    expect(idleCount()).toBe(1);
    const idle = idleBytes();
    // libwebp's decoder (our build) runs in it (grown if it needs more): no second memory is made.
    const webp = await encodeTo("webp", gradient(800, 600));
    const pixels = await decodeAlone("webp", webp, wasmModules.webp);
    expect(idleCount()).toBe(1);
    expect(idleBytes()).toBeGreaterThanOrEqual(idle);
    // The same pixels as a decode outside any job, in a memory of its own.
    const fresh = await new CodecSession().decode("webp", webp);
    expect([pixels.width, pixels.height]).toEqual([800, 600]);
    expect(bytesEqual(pixels.data.buffer as ArrayBuffer, fresh.data.buffer as ArrayBuffer)).toBe(true);
  });
});

describe("a stream of requests", () => {
  it("uncached sizes back to back never wait on the last job's garbage", async () => {
    drainIdle();
    const stem = `${uniquePrefix()}/photo`;
    await put(`${stem}.jpg`, fixture("cameraJpeg"));
    // Memory a finished job leaves counts for a minute, and a job may wait one second: dropping
    // every instance (as before) made the second request a 503 here.
    const vars = { MEMORY_BUDGET_MB: "64", MEMORY_RELEASE_MS: "60000", ADMISSION_WAIT_MS: "1000" };
    for (const width of [300, 301, 302, 303]) {
      const { res, image } = await call(`/${stem}_${width}_0.jpg?caplist=webp`, {}, vars);
      expect(res.status, res.headers.get("X-Image-Tried") ?? "").toBe(200);
      expect(image).toEqual({ format: "webp", width, height: Math.round((2592 * width) / 1944) });
      // Server-Timing names any wait for memory.
      expect(res.headers.get("Server-Timing")).not.toMatch(/wait;/);
    }
  });

  it("a finished job's own buffers are freed at once: the next job never waits for V8 to collect them", async () => {
    drainIdle();
    const stem = `${uniquePrefix()}/wide`;
    // A transparent 2000x1500 picture as JPEG at about its own size: the whole output is made
    // in JS and flattened (12 MB each) before the encoder takes it, so the job's own buffers
    // weigh as much as its codec memories.
    await put(`${stem}.png`, await encodeTo("png", gradient(2000, 1500, 128)));
    // Garbage counts for a minute and a job may wait one second: unless the first job's
    // buffers are returned when it ends, the second does not fit beside them (a 503).
    const vars = { MEMORY_BUDGET_MB: "36", MEMORY_RELEASE_MS: "60000", ADMISSION_WAIT_MS: "1000" };
    for (const width of [1999, 1998, 1997]) {
      const { res, image } = await call(`/${stem}_${width}_0.png?caplist=jpg`, {}, vars);
      expect(res.status, res.headers.get("X-Image-Tried") ?? "").toBe(200);
      expect(image).toEqual({ format: "jpg", width, height: Math.round((1500 * width) / 2000) });
      expect(res.headers.get("Server-Timing")).not.toMatch(/wait;/);
    }
    const gate = isolateGate(36 * MiB, 60_000);
    expect(gate.garbageBytes).toBeLessThan(4 * MiB);
  });

  it("a request arriving during a long production is answered before it ends", async () => {
    const big = `${uniquePrefix()}/big`;
    await put(`${big}.jpg`, await encodeTo("jpg", gradient(3000, 2000)));
    const small = `${uniquePrefix()}/small`;
    await put(`${small}.jpg`, await encodeTo("jpg", gradient(64, 48)));
    const answered: string[] = [];
    let smallDone: Promise<unknown> = Promise.resolve();
    // The moment the big original is read, its decode and encode start (seconds of codec work);
    // the small request is sent then, and needs several R2 and cache round trips of its own.
    const bucket = faultyBucket(env.IMAGES, {
      get: (key) => {
        if (key === `${big}.jpg`) {
          const ctx = createExecutionContext();
          smallDone = Promise.resolve(worker.fetch(new Request(`${ORIGIN}/${small}.jpg`) as never, env as never, ctx))
            .then(async (res) => {
              expect(res.status).toBe(200);
              await res.arrayBuffer();
              answered.push("small");
            })
            .finally(() => waitOnExecutionContext(ctx));
        }
        return false;
      },
    });
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request(`${ORIGIN}/${big}.jpg?caplist=webp`) as never, { ...env, IMAGES: bucket, CPU_BUDGET_MS: "300000" } as never, ctx);
    answered.push("big");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("image/webp");
    await res.arrayBuffer();
    await waitOnExecutionContext(ctx);
    await smallDone;
    expect(answered).toEqual(["small", "big"]);
  });
});
