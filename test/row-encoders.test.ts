/**
 * Full-size outputs above 4 MP written from rows (each format module's `codecs.rowEncoder`, src/formats): WebP through libwebp's
 * YUV picture filled band by band, AVIF as a grid of tiles of at most 512x512. Rows arrive in
 * stored orientation and the encoders turn them, so each output is compared pixel by pixel with
 * the upright picture; the AVIF must be a real grid (its header's band is one tile row) that
 * libavif decodes to the exact size with no visible seams, and WebP keeps an alpha gradient.
 */
import { describe, expect, it } from "vitest";
import { decode, type Pixels } from "../src/produce/codec-session";
import { readHeader } from "../src/headers";
import { call, fixture, put, uniquePrefix } from "./helpers";

/** Mean absolute difference per channel over `channels` of each pixel. */
function meanDiff(a: Pixels, b: Pixels, channels = [0, 1, 2]): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) for (const c of channels) sum += Math.abs(a.data[i + c] - b.data[i + c]);
  return sum / ((a.data.length / 4) * channels.length);
}

async function fullSize(name: string, ext: string, caplist: string) {
  const stem = `${uniquePrefix()}/${name}`;
  await put(`${stem}.${ext}`, fixture(name));
  const { res, body } = await call(`/${stem}.${ext}?caplist=${caplist}`, {}, { PEAK_MEMORY_HEADER: "on" });
  expect(res.status, name).toBe(200);
  expect(res.headers.get("X-Image-Tried")).toBe(`${caplist}=transcode`);
  return { body, peak: Number(res.headers.get("X-Image-Peak-Memory")) };
}

describe("full-size outputs written from rows", () => {
  it.each([3, 5, 6, 8])("EXIF orientation %i: WebP and AVIF come out upright (turned by the encoders)", async (n) => {
    const upright = await decode("jpg", fixture("bigUpright"));
    expect([upright.width, upright.height]).toEqual([2400, 1800]);
    for (const format of ["webp", "avif"] as const) {
      const { body, peak } = await fullSize(`bigTurned${n}`, "jpg", format);
      // Written from rows: whole-image encoders would hold 52-173 MB for 4.3 MP besides the 17 MB of RGBA.
      expect(peak / 2 ** 20, format).toBeLessThan(40);
      const header = readHeader(new Uint8Array(body))!;
      expect(header.format).toBe(format);
      // No transform left for the viewer: the pixels are upright.
      expect(header.orientation).toEqual([]);
      const img = await decode(format, body);
      // A wrong transform differs by ~60+; a right one by the two lossy encodes.
      expect(meanDiff(img, upright), `${format} ${n}`).toBeLessThan(6);
    }
    // The stored pixels really are turned (5, 6 and 8 are 1800x2400 as stored).
    const stored = await decode("jpg", fixture(`bigTurned${n}`));
    if (n === 3) expect(meanDiff(stored, upright)).toBeGreaterThan(20);
    else expect([stored.width, stored.height]).toEqual([1800, 2400]);
  });

  it("AVIF is a grid of tiles sized to the image, decoded whole by libavif, without seams", async () => {
    const { body, peak } = await fullSize("bigUpright", "jpg", "avif");
    const header = readHeader(new Uint8Array(body))!;
    // A grid's tiles set the band: 2400x1800 is 5x4 tiles of 480x456 (multiples of 8 covering
    // it, the last row cropped by 24), not 512x512 ones padded by 160 and 248 pixels.
    expect({ width: header.width, height: header.height, bandHeight: header.bandHeight }).toEqual({ width: 2400, height: 1800, bandHeight: 456 });
    const img = await decode("avif", body);
    expect([img.width, img.height]).toEqual([2400, 1800]);
    const upright = await decode("jpg", fixture("bigUpright"));
    expect(meanDiff(img, upright)).toBeLessThan(4);
    // Tile seams: the pixels on both sides of every tile boundary match the upright picture as
    // well as the whole does (a misplaced or mis-turned tile differs by tens).
    let sum = 0;
    let n = 0;
    const at = (p: Pixels, x: number, y: number, c: number) => p.data[(y * p.width + x) * 4 + c];
    for (const x of [479, 480, 959, 960, 1439, 1440, 1919, 1920]) for (let y = 0; y < 1800; y++) for (const c of [0, 1, 2]) (sum += Math.abs(at(img, x, y, c) - at(upright, x, y, c))), n++;
    for (const y of [455, 456, 911, 912, 1367, 1368]) for (let x = 0; x < 2400; x++) for (const c of [0, 1, 2]) (sum += Math.abs(at(img, x, y, c) - at(upright, x, y, c))), n++;
    expect(sum / n).toBeLessThan(5);
    // The whole-image encoder would hold 20 MB + 35.5 bytes a pixel (173 MB); the grid holds one tile's encoder.
    expect(peak / 2 ** 20).toBeLessThan(48);
  });

  it("WebP from rows keeps an alpha gradient", async () => {
    const { body } = await fullSize("bigAlphaPng", "png", "webp");
    const img = await decode("webp", body);
    expect([img.width, img.height]).toEqual([2100, 2000]);
    const source = await decode("png", fixture("bigAlphaPng"));
    expect(meanDiff(img, source, [3])).toBeLessThan(2);
    // Left edge transparent, right edge opaque.
    expect(img.data[3]).toBeLessThan(8);
    expect(img.data[(2100 - 1) * 4 + 3]).toBeGreaterThan(247);
  });
});
