/**
 * @module produce/orient
 * Pixel-level geometry: crops, the eight EXIF orientations, transparency checks and
 * flattening. Re-encoded outputs carry no metadata, so orientation must be baked into pixels.
 */
import type { Pixels } from "../codecs";
import { storedPosition } from "../codecs/rows";
import type { Rect } from "../headers";

export function crop(p: Pixels, r: Rect): Pixels {
  if (r.x === 0 && r.y === 0 && r.width === p.width && r.height === p.height) return p;
  const out = new Uint8ClampedArray(r.width * r.height * 4);
  for (let row = 0; row < r.height; row++) {
    const from = ((r.y + row) * p.width + r.x) * 4;
    out.set(p.data.subarray(from, from + r.width * 4), row * r.width * 4);
  }
  return { data: out, width: r.width, height: r.height };
}

/** Applies EXIF orientation `o` (see `storedPosition`). */
export function orient(p: Pixels, o: number): Pixels {
  if (o < 2 || o > 8) return p;
  const W = p.width;
  const H = p.height;
  const swap = o >= 5;
  const dw = swap ? H : W;
  const dh = swap ? W : H;
  const src = new Uint32Array(p.data.buffer, p.data.byteOffset, W * H);
  const out = new Uint32Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      const [sx, sy] = storedPosition(o, W, H, x, y);
      out[y * dw + x] = src[sy * W + sx];
    }
  }
  return { data: new Uint8ClampedArray(out.buffer), width: dw, height: dh };
}

/**
 * The single EXIF orientation equal to applying `ops` in order (HEIF may list a rotation and a
 * mirror): found by applying them to a 3x2 image of distinct pixels.
 */
export function composeOrientation(ops: readonly number[]): number {
  if (ops.length === 0) return 1;
  if (ops.length === 1) return ops[0];
  const probe = (list: readonly number[]) => {
    let p: Pixels = { data: new Uint8ClampedArray(new Uint32Array([1, 2, 3, 4, 5, 6]).buffer), width: 3, height: 2 };
    for (const o of list) p = orient(p, o);
    return `${p.width}:${new Uint32Array(p.data.buffer).join()}`;
  };
  const want = probe(ops);
  for (let o = 1; o <= 8; o++) if (probe([o]) === want) return o;
  throw new Error(`orientations ${ops.join(",")} compose to nothing`);
}

export { hasTransparency } from "../codecs/alpha";

/** Composites onto an opaque background, for formats without alpha (JPEG). */
export function flatten(p: Pixels, bg: readonly [number, number, number]): Pixels {
  const d = p.data;
  const out = new Uint8ClampedArray(d.length);
  for (let i = 0; i < d.length; i += 4) {
    const a = d[i + 3] / 255;
    out[i] = d[i] * a + bg[0] * (1 - a);
    out[i + 1] = d[i + 1] * a + bg[1] * (1 - a);
    out[i + 2] = d[i + 2] * a + bg[2] * (1 - a);
    out[i + 3] = 255;
  }
  return { data: out, width: p.width, height: p.height };
}
