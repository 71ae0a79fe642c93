/**
 * WebP through our libwebp build (codecs/webp): decoded straight to 1/1-1/8 of its size by
 * libwebp's rescaler. Full-size output is checked against @jsquash/webp's decoder (libwebp
 * too, built by Squoosh); scaled sizes, memory and delivery on a 12 MP photo.
 */
import webpDecFactory from "@jsquash/webp/codec/dec/webp_dec.js";
import webpDecModule from "@jsquash/webp/codec/dec/webp_dec.wasm";
import { describe, expect, it } from "vitest";
import { CodecSession } from "../src/produce/codec-session";
import { instantiate } from "../src/codecs/emscripten";
import { readHeader } from "../src/headers";
import { streamedWebpMemory } from "../src/produce/budget";
import { call, fixture, put, uniquePrefix } from "./helpers";
import { webpRowEncoder, type SharpYuv } from "../src/codecs/webp";

async function reference(bytes: ArrayBuffer) {
  const mod = (await instantiate(webpDecFactory as never, webpDecModule)) as unknown as { decode(b: ArrayBuffer): { data: Uint8ClampedArray; width: number; height: number } };
  return mod.decode(bytes);
}

describe("WebP decoder (libwebp, scaled)", () => {
  it.each(["hopperWebp6", "losslessAlphaWebp", "photo12mpWebp"])("%s at full size: the reference decoder's pixels", async (name) => {
    const bytes = fixture(name);
    const ours = await new CodecSession().decode("webp", bytes);
    const ref = await reference(bytes);
    expect([ours.width, ours.height]).toEqual([ref.width, ref.height]);
    let worst = 0;
    for (let i = 0; i < ours.data.length; i++) worst = Math.max(worst, Math.abs(ours.data[i] - ref.data[i]));
    expect(worst, name).toBeLessThanOrEqual(2);
  });

  it("a 12 MP photo decodes at 1/2, 1/4 and 1/8 into only the scaled pixels, as predicted", async () => {
    const photo = fixture("photo12mpWebp");
    const header = readHeader(new Uint8Array(photo))!;
    expect(header).toMatchObject({ width: 4000, height: 3000, lossless: false });
    for (const denom of [1, 2, 4, 8]) {
      const dec = await new CodecSession().openRows("webp", photo, denom, header);
      expect([dec.width, dec.height]).toEqual([Math.ceil(4000 / denom), Math.ceil(3000 / denom)]);
      let rows = 0;
      for (let band = await dec.read(); band; band = await dec.read()) rows += band.rows;
      expect(rows).toBe(dec.height);
      const predicted = streamedWebpMemory(header, photo.byteLength, dec.width);
      expect(predicted, `1/${denom}`).toBeGreaterThanOrEqual(dec.memoryBytes);
      expect(predicted, `1/${denom}`).toBeLessThan(dec.memoryBytes * 2);
      // At 1/4 the decoder holds about 1000x750 RGBA (2.9 MiB) and the file, never 48 MB of full-size pixels.
      if (denom === 4) expect(dec.memoryBytes).toBeLessThan(12 * 2 ** 20);
    }
  });

  it("12 MP WebP -> 800w JPEG is served at once with a small whole-job peak; a truncated WebP is a clean 404", async () => {
    const stem = `${uniquePrefix()}/photo`;
    await put(`${stem}.webp`, fixture("photo12mpWebp"));
    const { res, image } = await call(`/${stem}_800_0.jpg?caplist=jpg`, {}, { PEAK_MEMORY_HEADER: "on" });
    expect(res.status).toBe(200);
    expect(image).toEqual({ format: "jpg", width: 800, height: 600 });
    // Was 57.9 MB for the whole-image decoder alone.
    expect(Number(res.headers.get("X-Image-Peak-Memory")) / 2 ** 20).toBeLessThan(24);
    const cut = fixture("photo12mpWebp").slice(0, 200_000);
    await put(`${stem}cut.webp`, cut);
    const broken = await call(`/${stem}cut_800_0.jpg?caplist=jpg`);
    expect(broken.res.status).toBe(404);
    expect(broken.res.headers.get("X-Image-Tried")).toBe("jpg=decode-error");
  });
});

describe("WebP encoder: sharp RGB to YUV where colours meet", () => {
  /** Encodes `pixels` through the worker's row encoder with `sharp`, returns the file and its decoded pixels. */
  async function roundTrip(pixels: { data: Uint8ClampedArray; width: number; height: number }, sharp: SharpYuv) {
    const enc = webpRowEncoder(pixels.width, pixels.height, 1, false, 90, 4, false, sharp);
    for (let y = 0; y < pixels.height; y += enc.bandRows) {
      const n = Math.min(enc.bandRows, pixels.height - y);
      enc.write(pixels.data.subarray(y * pixels.width * 4, (y + n) * pixels.width * 4), n);
    }
    const bytes = enc.finish();
    return { bytes, decoded: await new CodecSession().decode("webp", bytes) };
  }
  const meanError = (a: Uint8ClampedArray, b: Uint8ClampedArray, y0: number, y1: number, width: number) => {
    let sum = 0;
    let n = 0;
    for (let i = y0 * width * 4; i < y1 * width * 4; i++) if (i % 4 !== 3) (sum += Math.abs(a[i] - b[i])), n++;
    return sum / n;
  };
  // 256x160: rows 0-79 a chequerboard of saturated red and blue 5-pixel squares (their odd side
  // makes 2x2 blocks straddle the edges between colours), rows 80-159 a smooth grey-green
  // gradient (no block does).
  const width = 256;
  const height = 160;
  const image = { data: new Uint8ClampedArray(width * height * 4), width, height };
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const px = y < 80 ? ((Math.floor(x / 5) + Math.floor(y / 5)) % 2 ? [220, 20, 30] : [30, 40, 220]) : [90 + (x >> 2), 110 + (y >> 2), 90];
      image.data.set([...px, 255], i);
    }

  it("where colours meet, the decoded pixels are closer to the source than averaging's", async () => {
    const plain = await roundTrip(image, "off");
    const edges = await roundTrip(image, "edges");
    expect([edges.decoded.width, edges.decoded.height]).toEqual([width, height]);
    const before = meanError(image.data, plain.decoded.data, 0, 80, width);
    const after = meanError(image.data, edges.decoded.data, 0, 80, width);
    expect(after, `mean |error| ${after.toFixed(2)} vs ${before.toFixed(2)}`).toBeLessThan(0.9 * before);
    // The smooth half is converted as before: the sharp conversion is spent only where it changes something.
    expect(meanError(plain.decoded.data, edges.decoded.data, 96, height, width)).toBeLessThan(0.5);
  });

  it("an image without colour edges is encoded exactly as by averaging", async () => {
    const smooth = { ...image, data: image.data.slice(80 * width * 4), height: 80 };
    const plain = await roundTrip(smooth, "off");
    const edges = await roundTrip(smooth, "edges");
    expect(new Uint8Array(edges.bytes)).toEqual(new Uint8Array(plain.bytes));
    const everywhere = await roundTrip(smooth, "everywhere");
    expect(new Uint8Array(everywhere.bytes)).not.toEqual(new Uint8Array(plain.bytes));
  });
});
