/**
 * The resampler's SIMD kernels (codecs/resize) against a plain float64 Lanczos3 written here
 * from the definition (separable, premultiplied by alpha, the kernel widened by the scale when
 * shrinking): the WASM path computes in float32, so a pixel may differ by one step, no more.
 * Also checks the streaming path (rows pushed a few at a time into a band sink) gives the very
 * same bytes as the whole-image call.
 */
import { describe, expect, it } from "vitest";
import { decode, type Pixels } from "../src/produce/codec-session";
import { resample, Resampler } from "../src/produce/resample";
import { fixture } from "./helpers";

function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (Math.abs(x) >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

/** For each output sample: [source index, weight] pairs, normalised. */
function taps(inSize: number, outSize: number): [number, number][][] {
  const scale = inSize / outSize;
  const stretch = Math.max(1, scale);
  return Array.from({ length: outSize }, (_, o) => {
    const centre = (o + 0.5) * scale;
    const list: [number, number][] = [];
    for (let i = Math.max(0, Math.floor(centre - 3 * stretch)); i <= Math.min(inSize - 1, Math.ceil(centre + 3 * stretch)); i++) list.push([i, lanczos3((i + 0.5 - centre) / stretch)]);
    const sum = list.reduce((n, [, w]) => n + w, 0);
    return list.map(([i, w]) => [i, w / sum] as [number, number]);
  });
}

function reference(src: Pixels, width: number, height: number): Uint8ClampedArray {
  const tx = taps(src.width, width);
  const ty = taps(src.height, height);
  // Horizontal pass, premultiplied (r, g, b scaled by alpha; the fourth channel sums alpha).
  const mid = new Float64Array(width * src.height * 4);
  for (let y = 0; y < src.height; y++)
    for (let o = 0; o < width; o++)
      for (const [i, w] of tx[o]) {
        const p = (y * src.width + i) * 4;
        const wa = w * src.data[p + 3];
        for (let c = 0; c < 3; c++) mid[(y * width + o) * 4 + c] += src.data[p + c] * wa;
        mid[(y * width + o) * 4 + 3] += wa;
      }
  const out = new Uint8ClampedArray(width * height * 4);
  for (let o = 0; o < height; o++)
    for (let x = 0; x < width; x++) {
      const acc = [0, 0, 0, 0];
      for (const [i, w] of ty[o]) for (let c = 0; c < 4; c++) acc[c] += mid[(i * width + x) * 4 + c] * w;
      const p = (o * width + x) * 4;
      for (let c = 0; c < 3; c++) out[p + c] = acc[3] > 0.5 ? acc[c] / acc[3] : 0;
      out[p + 3] = acc[3];
    }
  return out;
}

function maxDiff(a: Uint8ClampedArray, b: Uint8ClampedArray): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe("resampler (WASM SIMD kernels)", () => {
  it.each([
    ["parrots, shrink 768x512 -> 300x200", "kodim23Png", 300, 200],
    ["parrots, enlarge 768x512 -> 1000x700", "kodim23Png", 1000, 700],
    ["hopper with alpha, 128x128 -> 50x37", "hopperPng", 50, 37],
  ] as const)("%s: within one step of a float64 Lanczos3", async (_name, name, w, h) => {
    const src = await decode("png", fixture(name));
    expect(maxDiff(resample(src, w, h).data, reference(src, w, h))).toBeLessThanOrEqual(1);
  });

  it("a transparent source keeps its alpha and gives transparent pixels no colour", async () => {
    // Left half transparent red, right half opaque blue.
    const src: Pixels = { width: 64, height: 16, data: new Uint8ClampedArray(64 * 16 * 4) };
    for (let i = 0; i < 64 * 16; i++) src.data.set((i % 64) < 32 ? [255, 0, 0, 0] : [0, 0, 255, 255], i * 4);
    const out = resample(src, 16, 4);
    expect(maxDiff(out.data, reference(src, 16, 4))).toBeLessThanOrEqual(1);
    expect([...out.data.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    // No red fringe where the halves meet: colour comes only from opaque blue.
    for (let x = 0; x < 16; x++) expect(out.data[x * 4]).toBe(0);
  });

  it("a restarted resampler (an animation's next frame) gives the same bytes as a fresh one", async () => {
    const a = await decode("png", fixture("kodim23Png"));
    // A second frame: the first one turned upside down, so nothing can be left over from it.
    const b: Pixels = { width: a.width, height: a.height, data: new Uint8ClampedArray(a.data.length) };
    for (let y = 0; y < a.height; y++) b.data.set(a.data.subarray(y * a.width * 4, (y + 1) * a.width * 4), (a.height - 1 - y) * a.width * 4);
    const r = new Resampler(a.width, a.height, 300, 200);
    r.push(a.data, 0, a.width * 4, 0, a.height);
    r.restart();
    r.push(b.data, 0, b.width * 4, 0, b.height);
    expect(r.done).toBe(true);
    expect(maxDiff(r.out, resample(b, 300, 200).data)).toBe(0);
  });

  it("rows pushed a few at a time into a band sink give the same bytes as the whole image", async () => {
    const src = await decode("png", fixture("kodim23Png"));
    const whole = resample(src, 500, 333).data;
    const streamed = new Uint8ClampedArray(whole.length);
    let at = 0;
    const r = new Resampler(src.width, src.height, 500, 333, {
      bandRows: 16,
      write(rows, count) {
        streamed.set(rows.subarray(0, count * 500 * 4), at);
        at += count * 500 * 4;
      },
    });
    for (let y = 0; y < src.height; y += 7) r.push(src.data, y * src.width * 4, src.width * 4, 0, Math.min(7, src.height - y));
    expect(r.done).toBe(true);
    expect(at).toBe(whole.length);
    expect(maxDiff(streamed, whole)).toBe(0);
  });
});
