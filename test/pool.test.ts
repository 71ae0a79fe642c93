/**
 * Codec instances kept between jobs (src/codecs/pool): a reused instance writes the same bytes
 * as a fresh one, only small jobs take one and only an instance that never grew is kept, and
 * the isolate's memory gate counts idle instances and drains them when a job needs the room.
 */
import { describe, expect, it } from "vitest";
import { drainPool, pooledBytes } from "../src/codecs/pool";
import { decode, encode } from "../src/codecs";
import { MemoryGate } from "../src/produce/admission";
import { bytesEqual, gradient } from "./helpers";

const MiB = 2 ** 20;

describe("codec instance pool", () => {
  it("a pooled mozjpeg instance writes the same file as a fresh one, and stays pooled", async () => {
    drainPool();
    const pixels = gradient(320, 200);
    const fresh = await encode("jpg", pixels, { quality: 80, speed: 1 });
    const kept = pooledBytes();
    // mozjpeg's 16 MiB instance went back to the pool.
    expect(kept).toBeGreaterThanOrEqual(16 * MiB);
    const reused = await encode("jpg", pixels, { quality: 80, speed: 1 });
    expect(bytesEqual(fresh, reused)).toBe(true);
    expect(pooledBytes()).toBe(kept);
  });

  it("a large job gets a fresh instance, and one whose memory grew is never kept", async () => {
    drainPool();
    await encode("jpg", gradient(320, 200), { quality: 80, speed: 1 });
    const kept = pooledBytes();
    expect(kept).toBeGreaterThan(0);
    // 2000x1500: over POOL_JOB_PIXELS, so a fresh instance, which grows past its initial memory
    // and is dropped; the small one stays pooled.
    const big = await encode("jpg", gradient(2000, 1500), { quality: 80, speed: 1 });
    expect((await decode("jpg", big)).width).toBe(2000);
    expect(pooledBytes()).toBe(kept);
  });

  it("the gate counts idle instances as used and drains them when a job needs the room", async () => {
    drainPool();
    await encode("jpg", gradient(64, 64), { quality: 80, speed: 1 });
    const idle = pooledBytes();
    expect(idle).toBeGreaterThan(0);
    const gate = new MemoryGate(64 * MiB, 200, { bytes: pooledBytes, drain: drainPool });
    expect(gate.usedBytes).toBe(idle);
    // A job that fits only without them: the pool is drained, and its memory counts as garbage
    // for the release delay (V8 frees it at a later collection), so the job waits that long.
    const started = Date.now();
    const ticket = gate.ticket();
    await ticket.ensure(64 * MiB - 1, 5_000);
    expect(pooledBytes()).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    ticket.release();
  });
});
