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
