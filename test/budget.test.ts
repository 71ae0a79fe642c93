/**
 * Memory and CPU budgets with real codecs: the memory model must never predict less than the
 * codecs really take, and jobs over a budget fail over (or are deferred) instead of running.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CodecSession } from "../src/codecs";
import type { FormatId } from "../src/formats";
import { decodeMemory, predictCost } from "../src/produce/budget";
import { call, encodeTo, fixture, gradient, put, uniquePrefix, until } from "./helpers";

const FORMATS: FormatId[] = ["jpg", "webp", "avif", "png"];
const settings = { quality: 80, speed: 8 };

describe("memory model against measured WASM peaks", () => {
  it.each([[800, 600], [2000, 1500]])("%ix%i: predictions cover every codec's measured peak", async (w, h) => {
    const pixels = gradient(w, h);
    for (const format of FORMATS) {
      const enc = new CodecSession();
      const bytes = await enc.encode(format, pixels, { ...settings, speed: format === "webp" ? 4 : 8 });
      const dec = new CodecSession();
      await dec.decode(format, bytes);
      const encodePredicted = predictCost({ sourceFormat: format, sourcePixels: w * h, outputFormat: format, outputPixels: w * h, settings, pixelsReady: true }).memoryBytes;
      expect(encodePredicted, `${format} encode`).toBeGreaterThanOrEqual(enc.peakWasmBytes);
      expect(decodeMemory(format, w * h), `${format} decode`).toBeGreaterThanOrEqual(dec.peakWasmBytes);
      // And not so pessimistic that it refuses what fits: within 2x of the measurement.
      expect(decodeMemory(format, w * h)).toBeLessThan(dec.peakWasmBytes * 2);
    }
  });
});

describe("budgets in the delivery path", () => {
  it("a 12 MP camera JPEG resized to 1200w stays under 128 MiB of WASM, reported per response", async () => {
    const stem = `${uniquePrefix()}/camera`;
    await put(`${stem}.jpg`, fixture("photo12mp"));
    const { res, image } = await call(`/${stem}_1200_0.jpg?caplist=webp`, {}, { PEAK_MEMORY_HEADER: "on" });
    expect(image).toEqual({ format: "webp", width: 1200, height: 1600 });
    const peak = Number(res.headers.get("X-Image-Peak-Memory"));
    expect(peak).toBeGreaterThan(50 * 2 ** 20);
    expect(peak).toBeLessThanOrEqual(128 * 2 ** 20);
    // Off (the production setting), the header is absent.
    const off = await call(`/${stem}_600_0.jpg?caplist=webp`, {}, { PEAK_MEMORY_HEADER: "off" });
    expect(off.res.headers.get("X-Image-Peak-Memory")).toBeNull();
  });

  it("a source predicted over the memory budget is never decoded and fails over", async () => {
    const stem = `${uniquePrefix()}/camera`;
    await put(`${stem}.jpg`, fixture("photo12mp"));
    const { res, body } = await call(`/${stem}_300_0.jpg?caplist=webp,jpg`, {}, { MEMORY_BUDGET_MB: "64" });
    expect(res.status).toBe(404);
    expect(res.headers.get("X-Image-Tried")).toBe("webp=over-memory-budget,jpg=over-memory-budget");
    expect(JSON.parse(new TextDecoder().decode(body)).candidates[0]).toEqual({ format: "webp", verdict: "over-memory-budget" });
    // The full-size JPEG itself is still served: it needs no decoding.
    const whole = await call(`/${stem}.jpg?caplist=avif,jpg`, {}, { MEMORY_BUDGET_MB: "64" });
    expect(whole.res.headers.get("X-Image-Tried")).toBe("avif=over-memory-budget,jpg=r2");
    expect(whole.image).toEqual({ format: "jpg", width: 3024, height: 4032 });
  });

  it("a format over the CPU budget is skipped now, served by the next format, and produced in the background", async () => {
    const stem = `${uniquePrefix()}/cover`;
    await put(`${stem}.jpg`, await encodeTo("jpg", gradient(640, 480)));
    // 0.3 MP: AVIF is predicted at ~170 ms, WebP at ~65 ms.
    const vars = { CPU_BUDGET_MS: "100" };
    const first = await call(`/${stem}.jpg?caplist=avif,webp`, {}, vars);
    expect(first.res.headers.get("X-Image-Tried")).toBe("avif=over-cpu-budget,webp=transcode");
    expect(first.image).toEqual({ format: "webp", width: 640, height: 480 });
    // The queue consumer produces it into R2.
    const stored = await until("deferred AVIF", () => env.IMAGES.head(`${stem}.avif`), (o) => o !== null);
    expect(stored?.customMetadata?.producedBy).toBe("on-demand");
    const second = await call(`/${stem}.jpg?caplist=avif,webp`, {}, vars);
    expect(second.res.headers.get("X-Image-Tried")).toBe("avif=r2");
    expect(second.image).toEqual({ format: "avif", width: 640, height: 480 });
  });

  it("a job over the background budget too is never started", async () => {
    const stem = `${uniquePrefix()}/cover`;
    await put(`${stem}.jpg`, await encodeTo("jpg", gradient(640, 480)));
    const { res } = await call(`/${stem}.jpg?caplist=avif,jpg`, {}, { CPU_BUDGET_MS: "100", BACKGROUND_CPU_BUDGET_MS: "120" });
    expect(res.headers.get("X-Image-Tried")).toBe("avif=over-cpu-budget,jpg=r2");
    // Give a (wrongly) queued job time to land: nothing must.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await env.IMAGES.head(`${stem}.avif`)).toBeNull();
  });
});
