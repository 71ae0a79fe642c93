/**
 * PNG decoded by our own JS decoder (codecs/png): pixel for pixel what the reference decoder
 * (@jsquash/png's, the Rust `png` crate in WASM) gives, for every colour type, bit depth,
 * tRNS kind and Adam7; and a file that lies about its size fails without leaving memory behind.
 */
import pngDecodeReference, { init as initPngDecode } from "@jsquash/png/decode.js";
import { describe, expect, it } from "vitest";
import { wasmModules } from "../wasm/modules";
import { CodecSession } from "../src/produce/codec-session";
import { readHeader } from "../src/headers";
import { openPng, pngDecodeBytes } from "../src/codecs/png";
import { call, fixture, put, uniquePrefix } from "./helpers";

const GENERATED = [
  "pngRgb8",
  "pngRgb8Interlaced",
  "pngRgba8",
  "pngRgba16Interlaced",
  "pngRgb16",
  "pngGrey8",
  "pngGrey16",
  "pngGreyAlpha8",
  "pngPalette1",
  "pngPalette2",
  "pngPalette4Interlaced",
  "pngPaletteAlpha8",
  "png1x1Interlaced",
  "png3x2Interlaced",
  "pngGrey1Keyed",
  "pngGrey2Keyed",
  "pngGrey4Keyed",
  "pngRgb16Keyed",
  "hopperPng",
  "kodim23Png",
];

async function reference(bytes: ArrayBuffer) {
  await initPngDecode(wasmModules.png);
  return pngDecodeReference(bytes);
}

describe("PNG decoder", () => {
  it.each(GENERATED)("%s: same pixels as the reference decoder", async (name) => {
    const bytes = fixture(name);
    const ours = await new CodecSession().decode("png", bytes);
    const ref = await reference(bytes);
    expect([ours.width, ours.height]).toEqual([ref.width, ref.height]);
    let worst = 0;
    for (let i = 0; i < ours.data.length; i++) worst = Math.max(worst, Math.abs(ours.data[i] - ref.data[i]));
    // 16-bit samples: we keep the high byte, the reference may round; nothing else may differ.
    const header = new Uint8Array(bytes);
    expect(worst, name).toBeLessThanOrEqual(header[24] === 16 ? 1 : 0);
  });

  it("Adam7 and plain files of one picture decode to the same pixels", async () => {
    const plain = await new CodecSession().decode("png", fixture("pngRgb8"));
    const interlaced = await new CodecSession().decode("png", fixture("pngRgb8Interlaced"));
    expect(interlaced.data.every((v, i) => v === plain.data[i])).toBe(true);
  });

  it("a colour key makes exactly its samples transparent", async () => {
    const img = await new CodecSession().decode("png", fixture("pngGrey2Keyed"));
    // Generated as sample(x, y) = (3x + y) mod 4 with tRNS grey = 1.
    for (const [x, y] of [[0, 1], [1, 2], [5, 2], [0, 0], [1, 0], [2, 3]]) {
      const transparent = (3 * x + y) % 4 === 1;
      expect(img.data[(y * img.width + x) * 4 + 3], `${x},${y}`).toBe(transparent ? 0 : 255);
    }
  });

  it("damaged files are errors, not hangs or garbage", async () => {
    const good = new Uint8Array(fixture("pngRgb8"));
    const truncated = good.slice(0, good.length >> 1).buffer;
    await expect(new CodecSession().decode("png", truncated)).rejects.toThrow(/ends before row|corrupt/);
    const flipped = good.slice();
    // Inside the first IDAT's deflate data.
    let idat = 8;
    while (String.fromCharCode(...good.subarray(idat + 4, idat + 8)) !== "IDAT") idat += 12 + new DataView(good.buffer).getUint32(idat);
    for (let i = idat + 40; i < idat + 60; i++) flipped[i] ^= 0xa5;
    await expect(new CodecSession().decode("png", flipped.buffer)).rejects.toThrow(/png decode failed/);
    await expect(new CodecSession().decode("png", fixture("lyingPng"))).rejects.toThrow(/ends before row 10 of 3000/);
  });

  it("the budget prices a plain PNG by its rows and an interlaced one by its whole image", () => {
    const plain = readHeader(new Uint8Array(fixture("pngRgb8")))!;
    const interlaced = readHeader(new Uint8Array(fixture("pngRgb8Interlaced")))!;
    expect([plain.interlaced, interlaced.interlaced]).toEqual([false, true]);
    expect(pngDecodeBytes(6000, 4000, false)).toBeLessThan(3 * 2 ** 20);
    expect(pngDecodeBytes(6000, 4000, true)).toBeGreaterThan(4 * 6000 * 4000);
  });
});

describe("a PNG whose zlib stream runs on past the image (issue 30)", () => {
  it("inflates only what the rows need", async () => {
    const bytes = fixture("pngZlibTail");
    const decoder = openPng(bytes);
    const band = await decoder.read();
    expect([...band!.data]).toEqual([10, 200, 30, 255]);
    expect(await decoder.read()).toBeNull();
    // About 64 KB of compressed tail (64 MiB inflated), of which one piece was fed.
    expect(bytes.byteLength).toBeGreaterThan(60_000);
    expect(decoder.compressedBytesRead).toBeLessThanOrEqual(8192);
  });

  it("is served like any 1x1 PNG", async () => {
    const key = `${uniquePrefix()}/tail`;
    await put(`${key}.png`, fixture("pngZlibTail"));
    const { res, image, body } = await call(`/${key}.png?caplist=webp`);
    expect(res.status).toBe(200);
    expect(image).toEqual({ format: "webp", width: 1, height: 1 });
    const pixels = await new CodecSession().decode("webp", body);
    expect(pixels.data[3]).toBe(255);
  });
});

describe("a PNG that lies about its size", () => {
  it("fails every request for good and leaves no codec memory behind", async () => {
    const stem = uniquePrefix();
    await put(`${stem}/liar.png`, fixture("lyingPng"));
    await put(`${stem}/good.png`, fixture("kodim23Png"));
    const peakOf = async (path: string) => {
      const { res, image } = await call(path, {}, { PEAK_MEMORY_HEADER: "on" });
      expect(res.status, path).toBe(200);
      expect(image?.format).toBe("png");
      return Number(res.headers.get("X-Image-Peak-Memory"));
    };
    // A PNG output: the job counts the PNG encoder's module-wide instance, which the old decoder
    // shared and grew by 34.6 MiB per failed 3000x3000 decode.
    const before = await peakOf(`/${stem}/good_300_0.png?caplist=png`);
    for (let i = 0; i < 6; i++) {
      const { res, body } = await call(`/${stem}/liar_${100 + i}_0.png?caplist=webp,png`);
      expect(res.status).toBe(404);
      expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
      expect(res.headers.get("X-Image-Tried")).toMatch(/decode-error/);
      expect(JSON.parse(new TextDecoder().decode(body)).error).toBe("not_found");
    }
    const after = await peakOf(`/${stem}/good_301_0.png?caplist=png`);
    expect(after - before).toBeLessThan(2 ** 20);
  });
});
