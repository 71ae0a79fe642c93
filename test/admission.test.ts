/**
 * Isolate-wide admission (issue 13): the gate on its own (plain module, real timers), then in
 * the delivery path: concurrent jobs never sum over the budget, and concurrent requests for one
 * variant share one production.
 */
import { describe, expect, it } from "vitest";
import { AdmissionTimeout, MemoryGate } from "../src/produce/admission";
import { isolateGate } from "../src/produce/admission";
import { bytesEqual, call, fixture, put, uniquePrefix } from "./helpers";

const MiB = 2 ** 20;

describe("MemoryGate", () => {
  it("admits while the sum fits, in FIFO order but for small jobs, and times out", async () => {
    const gate = new MemoryGate(120, 0);
    const a = gate.ticket();
    await a.ensure(60, 1000);
    const order: string[] = [];
    const b = gate.ticket();
    const c = gate.ticket();
    const d = gate.ticket();
    const waitB = b.ensure(70, 2000).then(() => order.push("b"));
    const waitC = c.ensure(10, 2000).then(() => order.push("c"));
    const waitD = d.ensure(45, 2000).then(() => order.push("d"));
    await new Promise((r) => setTimeout(r, 50));
    // c is small (at most a third of the budget): it goes ahead of b, which waits for room. d
    // would fit beside a and c (115), but it is large: it never overtakes b.
    expect(order).toEqual(["c"]);
    a.release();
    await new Promise((r) => setTimeout(r, 100));
    expect(order).toEqual(["c", "b"]);
    c.release();
    await Promise.all([waitB, waitC, waitD]);
    expect(order).toEqual(["c", "b", "d"]);
    expect(gate.usedBytes).toBe(115);
    await expect(gate.ticket().ensure(40, 100)).rejects.toBeInstanceOf(AdmissionTimeout);
    await expect(gate.ticket().ensure(121, 100)).rejects.toBeInstanceOf(AdmissionTimeout);
    b.release();
    d.release();
    expect(gate.usedBytes).toBe(0);
    expect(gate.peakUsedBytes).toBe(115);
  });

  it("a waiting request is admitted before background jobs that waited longer", async () => {
    const gate = new MemoryGate(100, 0);
    const running = gate.ticket("background");
    await running.ensure(90, 1000);
    const order: string[] = [];
    const job1 = gate.ticket("background");
    const job2 = gate.ticket("background");
    const request = gate.ticket();
    const waits = [
      job1.ensure(50, 2000).then(() => order.push("job1")),
      job2.ensure(50, 2000).then(() => order.push("job2")),
    ];
    await new Promise((r) => setTimeout(r, 30));
    waits.push(request.ensure(50, 2000).then(() => order.push("request")));
    await new Promise((r) => setTimeout(r, 30));
    // Nothing fits while the running job holds 90; it is never interrupted.
    expect(order).toEqual([]);
    running.release();
    await new Promise((r) => setTimeout(r, 100));
    // The request went first. A background job would now take part of the requests' reserve
    // (50 + 50 of 100): the jobs wait, in their own order.
    expect(order).toEqual(["request"]);
    request.release();
    await new Promise((r) => setTimeout(r, 100));
    expect(order).toEqual(["request", "job1"]);
    job1.release();
    await Promise.all(waits);
    expect(order).toEqual(["request", "job1", "job2"]);
    job2.release();
  });

  it("background jobs leave a reserve to requests; one larger than the rest runs alone", async () => {
    const gate = new MemoryGate(90, 0);
    const job1 = gate.ticket("background");
    await job1.ensure(50, 0);
    // 50 + 20 would pass the 60 background jobs may hold together (two thirds of 90).
    await expect(gate.ticket("background").ensure(20, 0)).rejects.toBeInstanceOf(AdmissionTimeout);
    // A request takes the reserve at once.
    const request = gate.ticket();
    await request.ensure(30, 0);
    expect(gate.usedBytes).toBe(80);
    request.release();
    // A background job of 70 (over the 60) runs only when nothing else holds memory.
    const big = gate.ticket("background");
    await expect(big.ensure(70, 0)).rejects.toBeInstanceOf(AdmissionTimeout);
    job1.release();
    await big.ensure(70, 0);
    expect(gate.usedBytes).toBe(70);
    big.release();
  });

  it("a background job gets its turn under a steady stream of requests, which it holds back only while due", async () => {
    const gate = new MemoryGate(100, 0);
    // Requests of 40, each admitted before the last one ends: the gate is never empty, so a
    // background job of 60 never fits the background share (66 of 100) beside them.
    const admitted: { at: number; job: boolean }[] = [];
    let stop = false;
    const relay = (async () => {
      const running: Promise<void>[] = [];
      while (!stop) {
        const t = gate.ticket();
        running.push(
          t.ensure(40, 8000).then(async () => {
            admitted.push({ at: Date.now(), job: false });
            await new Promise((r) => setTimeout(r, 300));
            t.release();
          }),
        );
        await new Promise((r) => setTimeout(r, 150));
      }
      await Promise.all(running);
    })();
    await new Promise((r) => setTimeout(r, 100));
    const job = gate.ticket("background");
    const asked = Date.now();
    // Re-encodes pass no wait: they are never due, and give up.
    await expect(gate.ticket("background").ensure(60, 0)).rejects.toBeInstanceOf(AdmissionTimeout);
    await job.ensure(60, 8000);
    admitted.push({ at: Date.now(), job: true });
    await new Promise((r) => setTimeout(r, 500));
    const released = Date.now();
    job.release();
    stop = true;
    await relay;
    const ran = admitted.find((a) => a.job)!.at;
    // It waited out the background wait before holding anything back.
    expect(ran - asked).toBeGreaterThanOrEqual(1000);
    // Requests were admitted before it and while it ran (40 beside 60 fits the budget).
    expect(admitted.some((a) => !a.job && a.at < ran)).toBe(true);
    expect(admitted.some((a) => !a.job && a.at > ran && a.at < released)).toBe(true);
    expect(gate.peakUsedBytes).toBeLessThanOrEqual(100);
  });

  it("a released job still counts until its memory can have been collected", async () => {
    const gate = new MemoryGate(100, 300);
    const a = gate.ticket();
    await a.ensure(80, 100);
    a.release();
    expect(gate.usedBytes).toBe(80);
    const started = Date.now();
    await gate.ticket().ensure(80, 2000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});

describe("admission and single flight in the delivery path", () => {
  it("concurrent jobs are admitted one after another when together they would not fit", async () => {
    const stem = `${uniquePrefix()}/pug`;
    await put(`${stem}.heic`, fixture("pug"));
    const vars = { MEMORY_BUDGET_MB: "56", MEMORY_RELEASE_MS: "500", PEAK_MEMORY_HEADER: "on" };
    const widths = [400, 401, 402];
    const results = await Promise.all(widths.map((w) => call(`/${stem}_${w}_0.heic?caplist=jpg`, {}, vars)));
    for (const [i, r] of results.entries()) {
      expect(r.res.status).toBe(200);
      expect(r.image).toEqual({ format: "jpg", width: widths[i], height: Math.round((3024 * widths[i]) / 4032) });
      // Each job alone is over half the budget, so no two ran at once.
      expect(Number(r.res.headers.get("X-Image-Peak-Memory"))).toBeGreaterThan(28 * MiB);
    }
    const gate = isolateGate(56 * MiB, 500);
    expect(gate.peakUsedBytes).toBeLessThanOrEqual(56 * MiB);
    expect(gate.peakUsedBytes).toBeGreaterThan(28 * MiB);
  });

  it("8 concurrent requests for one uncached variant: one decode, one encode, 8 identical bodies", async () => {
    const stem = `${uniquePrefix()}/pug`;
    await put(`${stem}.heic`, fixture("pug"));
    const results = await Promise.all(Array.from({ length: 8 }, () => call(`/${stem}_640_0.heic?caplist=webp`)));
    for (const r of results) {
      expect(r.res.status).toBe(200);
      expect(r.image).toEqual({ format: "webp", width: 640, height: 480 });
      expect(bytesEqual(r.body, results[0].body)).toBe(true);
      expect(r.res.headers.get("ETag")).toBe(results[0].res.headers.get("ETag"));
    }
    const timings = results.map((r) => r.res.headers.get("Server-Timing") ?? "");
    expect(timings.filter((t) => /decode;dur=/.test(t)).length).toBe(1);
    expect(timings.filter((t) => /encode;dur=/.test(t)).length).toBe(1);
  });
});
