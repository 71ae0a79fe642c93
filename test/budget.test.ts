/**
 * Memory and CPU budgets with real codecs: the memory model must never predict less than the
 * codecs really take, and jobs over a budget fail over (or are deferred) instead of running.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CodecSession, decode, encode } from "../src/produce/codec-session";
import type { FormatId } from "../src/formats";
import { primaryItem } from "../src/formats/isobmff";
import { readHeader } from "../src/headers";
import { decodeMemory, predictCost, streamedDecoderMemory, streamedJpegMemory } from "../src/produce/budget";
import { formatSpec } from "../src/formats";
import { call, encodeTo, fixture, gradient, put, uniquePrefix, until } from "./helpers";

const FORMATS: FormatId[] = ["jpg", "webp", "avif", "png"];
const settings = { quality: 80, speed: 8 };

describe("memory model against measured whole-job peaks", () => {
  it.each([[800, 600], [2000, 1500]])("%ix%i: predictions cover every codec's measured peak", async (w, h) => {
    const pixels = gradient(w, h);
    for (const format of FORMATS) {
      const enc = new CodecSession();
      const bytes = await enc.encode(format, pixels, { ...settings, speed: format === "webp" ? 4 : 8 });
      const shape = { sourceFormat: format, sourcePixels: w * h, sourceBytes: bytes.byteLength, outputFormat: format, outputPixels: w * h, settings };
      expect(predictCost({ ...shape, pixelsReady: true }).memoryBytes, `${format} encode`).toBeGreaterThanOrEqual(enc.peakBytes);
      const dec = new CodecSession();
      await dec.decode(format, bytes);
      // The decoder's memory (row decoders: as the pipeline prices them) and the full-size RGBA
      // that `decode` gathers.
      const header = readHeader(new Uint8Array(bytes))!;
      const streamed = formatSpec(format).rowScales && streamedDecoderMemory(header, bytes.byteLength, w);
      const predicted = (streamed ? streamed.decoderBytes + streamed.bandBytes : decodeMemory(format, w * h)) + 4 * w * h;
      expect(predicted, `${format} decode`).toBeGreaterThanOrEqual(dec.peakBytes);
      // And not so pessimistic that it refuses what fits: within 2x of the measurement.
      expect(predicted, `${format} decode`).toBeLessThan(dec.peakBytes * 2);
    }
  });

  it("a streamed JPEG decode's memory follows the scaled size and the file's scans", async () => {
    const photo = fixture("photo12mp");
    const header = readHeader(new Uint8Array(photo))!;
    expect(header.jpeg).toEqual({ scans: 10, multiScan: true, sampling: [[2, 2], [1, 1], [1, 1]] });
    const memory = new Map<number, number>();
    for (const denom of [1, 2, 4, 8]) {
      const dec = await new CodecSession().openRows("jpg", photo, denom, header);
      expect([dec.width, dec.height]).toEqual([Math.ceil(3024 / denom), Math.ceil(4032 / denom)]);
      let rows = 0;
      for (let band = await dec.read(); band; band = await dec.read()) rows += band.rows;
      expect(rows).toBe(dec.height);
      const predicted = streamedJpegMemory(3024, 4032, photo.byteLength, dec.width, header.jpeg!);
      expect(predicted, `1/${denom}`).toBeGreaterThanOrEqual(dec.memoryBytes);
      expect(predicted, `1/${denom}`).toBeLessThan(dec.memoryBytes * 1.5);
      memory.set(denom, dec.memoryBytes);
    }
    // Scaled down, only the coefficients the reduced IDCT reads are kept (native/jpeg Packed):
    // 1/8 holds about a fifth of the 36 MiB that 1/1 holds.
    expect(memory.get(8)!).toBeLessThan(memory.get(1)! * 0.3);
    expect(memory.get(4)!).toBeLessThan(memory.get(1)! * 0.7);
  });

  it("a progressive JPEG decoded at 1/2, 1/4 and 1/8 gives the pixels of the same image in one scan", async () => {
    // The same coefficients written as progressive scans and as one scan (our encoder, speed 0
    // and 1, both under JPEG_ROW_ENCODE_PIXELS): the packed store must not change a pixel.
    const whole = await decode("jpg", fixture("cameraJpeg"));
    const [w, h] = [1600, 1200];
    const data = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++) data.set(whole.data.subarray((y + 600) * whole.width * 4 + 200 * 4, (y + 600) * whole.width * 4 + (200 + w) * 4), y * w * 4);
    const pixels = { width: w, height: h, data };
    // Quality 100: high-frequency coefficients well above 1, so a wrong one shows in the pixels.
    const progressive = await encode("jpg", pixels, { quality: 100, speed: 0 });
    const oneScan = await encode("jpg", pixels, { quality: 100, speed: 1 });
    expect(readHeader(new Uint8Array(progressive))!.jpeg!.multiScan).toBe(true);
    expect(readHeader(new Uint8Array(oneScan))!.jpeg!.multiScan).toBe(false);
    for (const denom of [2, 4, 8]) {
      const rows = async (bytes: ArrayBuffer) => {
        const dec = await new CodecSession().openRows("jpg", bytes, denom, readHeader(new Uint8Array(bytes))!);
        const out = new Uint8Array(dec.width * dec.height * 4);
        let at = 0;
        for (let band = await dec.read(); band; band = await dec.read()) {
          out.set(band.data.subarray(0, band.rows * dec.width * 4), at);
          at += band.rows * dec.width * 4;
        }
        expect(at).toBe(out.length);
        return out;
      };
      const [a, b] = [await rows(progressive), await rows(oneScan)];
      expect(a.length, `1/${denom}`).toBe(Math.ceil(w / denom) * Math.ceil(h / denom) * 4);
      expect(a.findIndex((v, i) => v !== b[i]), `1/${denom}: first differing sample`).toBe(-1);
    }
  });
});

describe("row encoders: predictions against measured whole-job peaks", () => {
  // Full-size outputs above 4 MP, written from rows (decoder, bands and encoder alive at once).
  it.each([
    ["pug", "heic", "avif"],
    ["pug", "heic", "webp"],
    ["photo24mpBaseline", "jpg", "webp"],
    ["bigTurned6", "jpg", "avif"],
    ["bigAlphaPng", "png", "webp"],
  ] as const)("%s.%s -> full-size %s", async (name, ext, format) => {
    const bytes = fixture(name);
    const header = readHeader(new Uint8Array(bytes))!;
    const stem = `${uniquePrefix()}/${name}`;
    await put(`${stem}.${ext}`, bytes);
    const { res } = await call(`/${stem}.${ext}?caplist=${format}`, {}, { PEAK_MEMORY_HEADER: "on" });
    expect(res.headers.get("X-Image-Tried")).toBe(`${format}=transcode`);
    const peak = Number(res.headers.get("X-Image-Peak-Memory"));
    const pixels = header.width * header.height;
    const predicted = predictCost({
      sourceFormat: header.format,
      sourcePixels: pixels,
      sourceBytes: bytes.byteLength,
      streamed: { scaledPixels: pixels, ...streamedDecoderMemory(header, bytes.byteLength, header.width) },
      outputFormat: format,
      outputPixels: pixels,
      settings: { quality: 85, speed: format === "webp" ? 4 : 8 },
      pixelsReady: false,
      rowEncoded: { longSide: Math.max(header.width, header.height), alpha: header.hasAlpha && format === "webp" },
    }).memoryBytes;
    expect(predicted).toBeGreaterThanOrEqual(peak);
    expect(predicted).toBeLessThan(peak * 1.6);
  });

  it("24 MP progressive -> 1200w AVIF: chosen as a grid because the whole-image job would take over 3/4 of the budget", async () => {
    const bytes = fixture("photo24mpProgressive");
    const header = readHeader(new Uint8Array(bytes))!;
    const stem = `${uniquePrefix()}/p24`;
    await put(`${stem}.jpg`, bytes);
    const { res, body } = await call(`/${stem}_1200_0.jpg?caplist=avif`, {}, { PEAK_MEMORY_HEADER: "on" });
    expect(res.headers.get("X-Image-Tried")).toBe("avif=transcode");
    // A grid item (infe of type `grid`) is the primary item.
    expect(primaryItem(new Uint8Array(body)).type).toBe("grid");
    const peak = Number(res.headers.get("X-Image-Peak-Memory"));
    // Decoded at 1/4 scale (1500x1000), resized to 1200x800.
    const shape = {
      sourceFormat: header.format,
      sourcePixels: header.width * header.height,
      sourceBytes: bytes.byteLength,
      streamed: { scaledPixels: 1500 * 1000, ...streamedDecoderMemory(header, bytes.byteLength, 1500) },
      outputFormat: "avif" as const,
      outputPixels: 1200 * 800,
      settings: { quality: 85, speed: 8 },
      pixelsReady: false,
    };
    const whole = predictCost(shape).memoryBytes;
    const grid = predictCost({ ...shape, rowEncoded: { longSide: 1200, alpha: false } }).memoryBytes;
    // The DCT coefficients (about 71 MiB) stay alive beside either encoder; past 3/4 of the
    // 112 MiB budget a job would hold every other request in the admission gate (Production.streamsOutput).
    expect(whole).toBeGreaterThan(0.75 * 112 * 2 ** 20);
    expect(grid).toBeLessThan(whole);
    expect(grid).toBeGreaterThanOrEqual(peak);
    expect(grid).toBeLessThan(peak * 1.6);
  });
});

describe("budgets in the delivery path", () => {
  it("a 12 MP progressive JPEG resized to 1200w is decoded at 1/2 scale and stays under 72 MiB in all, reported per response", async () => {
    const stem = `${uniquePrefix()}/camera`;
    await put(`${stem}.jpg`, fixture("photo12mp"));
    const { res, image } = await call(`/${stem}_1200_0.jpg?caplist=webp`, {}, { PEAK_MEMORY_HEADER: "on" });
    expect(image).toEqual({ format: "webp", width: 1200, height: 1600 });
    const peak = Number(res.headers.get("X-Image-Peak-Memory"));
    // 37.9 MiB of decoder (the coefficients of a progressive 4:2:0 file, 3 bytes per source
    // pixel) plus the source, the 1200x1600 output and the WebP encoder (67.7 MiB in all at the
    // calibrated q87; 63 at the old q75): the 48 MiB of full-size RGBA is never made, which
    // would put it above 86.
    expect(peak).toBeGreaterThan(30 * 2 ** 20);
    expect(peak).toBeLessThanOrEqual(72 * 2 ** 20);
    // Off (the production setting), the header is absent.
    const off = await call(`/${stem}_600_0.jpg?caplist=webp`, {}, { PEAK_MEMORY_HEADER: "off" });
    expect(off.res.headers.get("X-Image-Peak-Memory")).toBeNull();
  });

  it("a source predicted over the memory budget is never decoded and fails over", async () => {
    const stem = `${uniquePrefix()}/camera`;
    await put(`${stem}.jpg`, fixture("photo12mp"));
    // 1200w is decoded at 1/2, where every coefficient of the progressive file is kept (36 MiB);
    // a 300w thumbnail, at 1/8, would fit (9 MiB).
    const { res, body } = await call(`/${stem}_1200_0.jpg?caplist=webp,jpg`, {}, { MEMORY_BUDGET_MB: "24" });
    expect(res.status).toBe(404);
    expect(res.headers.get("X-Image-Tried")).toBe("webp=over-memory-budget,jpg=over-memory-budget");
    expect(JSON.parse(new TextDecoder().decode(body)).candidates[0]).toEqual({ format: "webp", verdict: "over-memory-budget" });
    // The full-size JPEG itself is still served: it needs no decoding.
    const whole = await call(`/${stem}.jpg?caplist=avif,jpg`, {}, { MEMORY_BUDGET_MB: "24" });
    expect(whole.res.headers.get("X-Image-Tried")).toBe("avif=over-memory-budget,jpg=r2");
    expect(whole.image).toEqual({ format: "jpg", width: 3024, height: 4032 });
  });

  it("a format over the CPU budget is skipped now, served by the next format, and produced in the background", async () => {
    const stem = `${uniquePrefix()}/cover`;
    await put(`${stem}.jpg`, await encodeTo("jpg", gradient(640, 480)));
    // 0.3 MP: AVIF is predicted at ~170 ms, WebP at ~65 ms (their encoders alone: no per-image quality).
    const vars = { CPU_BUDGET_MS: "100", PER_IMAGE_QUALITY: "" };
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
    // Too slow for the background as well: a final verdict, and no job queued for it (the
    // deferral would have been submitted by the request's own background work, awaited by call()).
    expect(res.headers.get("X-Image-Tried")).toBe("avif=over-cpu-limit,jpg=r2");
    const jobs = await env.IMAGES.list({ prefix: `_cdn/jobs/${encodeURIComponent(`deferred:${stem}`)}` });
    expect(jobs.objects).toEqual([]);
    // The same request, deferrable this time, does create one: the check above can fail.
    await call(`/${stem}.jpg?caplist=avif,jpg`, {}, { CPU_BUDGET_MS: "100" });
    expect((await env.IMAGES.list({ prefix: `_cdn/jobs/${encodeURIComponent(`deferred:${stem}`)}` })).objects.length).toBe(1);
  });
});
