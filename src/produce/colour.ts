/**
 * @module produce/colour
 * Colour management: a source tagged with another RGB space than sRGB (an iPhone's Display P3,
 * Adobe RGB, ProPhoto, BT.2020) is converted to sRGB, which is what every client assumes of an
 * untagged image (our encoders write no profile). Without it, P3 values are shown as sRGB:
 * washed-out reds and greens.
 *
 * The exact path for the profiles photos carry, without Little CMS: an ICC matrix/TRC profile
 * (ICC.1:2010 F.3: `rXYZ`/`gXYZ`/`bXYZ` colorants, adapted to the D50 PCS, and `rTRC`/`gTRC`/
 * `bTRC` curves, `curv` or `para`) or H.273 code points (`nclx`: BT.709, Display P3, BT.2020
 * primaries; sRGB, BT.709 or gamma transfer) give a 3x3 matrix to sRGB in linear light and one
 * curve per channel. A CMYK profile (JPEG's, the print world's) is a table, `A2B1`/`A2B0` of
 * lut8/lut16 type (ICC.1 10.10-10.11: input curves, a 4-D grid interpolated between its 16
 * nearest points, output curves) into Lab or XYZ, then to sRGB (`inkConversion`). What this
 * cannot convert is served unconverted, as before: lutAtoB (v4 `mAB `) CMYK profiles, grey
 * profiles, PQ and HLG transfers, and any profile that does not parse (a broken profile never
 * fails a request).
 */
import type { InkConversion } from "../codecs/rows";
import type { ColourTag } from "../formats/colour-tag";

/** Converts `count` RGBA pixels of `data` in place. */
export type ColourConversion = (data: Uint8ClampedArray, count: number) => void;

type Mat = number[]; // 3x3, row-major
type Curve = (x: number) => number; // encoded 0..1 -> linear 0..1

const mul = (a: Mat, b: Mat): Mat => [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => a[r * 3] * b[c] + a[r * 3 + 1] * b[3 + c] + a[r * 3 + 2] * b[6 + c]));
function inverse(m: Mat): Mat {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (!det) throw new Error("singular matrix");
  return [A, -(b * i - c * h), b * f - c * e, B, a * i - c * g, -(a * f - c * d), C, -(a * h - b * g), a * e - b * d].map((x) => x / det);
}

/** RGB -> XYZ of primaries and white point given as CIE xy (SMPTE RP 177). */
function rgbToXyz(r: [number, number], g: [number, number], b: [number, number], w: [number, number]): Mat {
  const xyz = ([x, y]: [number, number]) => [x / y, 1, (1 - x - y) / y];
  const [R, G, B] = [xyz(r), xyz(g), xyz(b)];
  const P: Mat = [R[0], G[0], B[0], R[1], G[1], B[1], R[2], G[2], B[2]];
  const W = xyz(w);
  const inv = inverse(P);
  const S = [0, 1, 2].map((k) => inv[k * 3] * W[0] + inv[k * 3 + 1] * W[1] + inv[k * 3 + 2] * W[2]);
  return P.map((v, k) => v * S[k % 3]);
}

const D65: [number, number] = [0.3127, 0.329];
const SRGB_D65 = rgbToXyz([0.64, 0.33], [0.3, 0.6], [0.15, 0.06], D65);
/** H.273 ColourPrimaries with a D65 white point, as RGB -> XYZ. */
const PRIMARIES: Record<number, Mat> = {
  1: SRGB_D65,
  9: rgbToXyz([0.708, 0.292], [0.17, 0.797], [0.131, 0.046], D65), // BT.2020
  12: rgbToXyz([0.68, 0.32], [0.265, 0.69], [0.15, 0.06], D65), // SMPTE EG 432-1: Display P3
};

/** IEC 61966-2-1: the sRGB curve, decoding. */
const srgbDecode: Curve = (x) => (x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4);
/** ITU-R BT.709 / BT.2020 OETF, inverted. */
const bt709Decode: Curve = (x) => (x < 0.081 ? x / 4.5 : ((x + 0.099) / 1.099) ** (1 / 0.45));
/** H.273 TransferCharacteristics this path decodes. */
const TRANSFERS: Record<number, Curve> = { 1: bt709Decode, 6: bt709Decode, 14: bt709Decode, 15: bt709Decode, 13: srgbDecode, 4: (x) => x ** 2.2, 5: (x) => x ** 2.8, 8: (x) => x };

/** The sRGB D50 colorants of the ICC's own sRGB profile (sRGB IEC61966-2.1, Bradford-adapted). */
const SRGB_D50: Mat = [0.4360747, 0.3850649, 0.1430804, 0.2225045, 0.7168786, 0.0606169, 0.0139322, 0.0971045, 0.7141733];

const s15 = (d: DataView, at: number) => d.getInt32(at) / 65536;

/** An ICC profile's header and tag table (ICC.1 7.2, 7.3), read once for either conversion; null when it does not hold together. */
function readIcc(icc: Uint8Array) {
  if (icc.length < 132 || icc.length > MAX_PROFILE_BYTES) return null;
  const d = new DataView(icc.buffer, icc.byteOffset, icc.byteLength);
  const sig = (at: number) => String.fromCharCode(icc[at], icc[at + 1], icc[at + 2], icc[at + 3]);
  const count = d.getUint32(128);
  if (count > 200 || 132 + count * 12 > icc.length) return null;
  const tags = new Map<string, { at: number; size: number }>();
  for (let i = 0; i < count; i++) {
    const at = d.getUint32(132 + i * 12 + 4);
    const size = d.getUint32(132 + i * 12 + 8);
    if (at + size > icc.length || size < 8) return null;
    tags.set(sig(132 + i * 12), { at, size });
  }
  // 7.2.6/7.2.7: the data colour space and the PCS.
  return { d, sig, space: sig(16), pcs: sig(20), tags };
}

/** An ICC matrix/TRC RGB profile's colorants (to D50 XYZ) and curves; null for anything else. */
function parseIcc(icc: Uint8Array): { toXyzD50: Mat; curves: [Curve, Curve, Curve] } | null {
  const profile = readIcc(icc);
  // A matrix/TRC profile's: RGB data, XYZ PCS.
  if (!profile || profile.space !== "RGB " || profile.pcs !== "XYZ ") return null;
  const { d, sig: tag, tags } = profile;
  const xyz = (name: string) => {
    const t = tags.get(name);
    if (!t || tag(t.at) !== "XYZ " || t.size < 20) return null;
    return [s15(d, t.at + 8), s15(d, t.at + 12), s15(d, t.at + 16)];
  };
  const curve = (name: string): Curve | null => {
    const t = tags.get(name);
    if (!t) return null;
    if (tag(t.at) === "curv") {
      const n = d.getUint32(t.at + 8);
      if (t.size < 12 + 2 * n) return null;
      if (n === 0) return (x) => x;
      if (n === 1) {
        const g = d.getUint16(t.at + 12) / 256;
        return (x) => x ** g;
      }
      const table = Array.from({ length: n }, (_, i) => d.getUint16(t.at + 12 + 2 * i) / 65535);
      return (x) => {
        const p = x * (n - 1);
        const i = Math.min(n - 2, Math.floor(p));
        return table[i] + (table[i + 1] - table[i]) * (p - i);
      };
    }
    if (tag(t.at) === "para") {
      // ICC.1 10.18: the parametric curve types 0-4.
      const type = d.getUint16(t.at + 8);
      const n = [1, 3, 4, 5, 7][type];
      if (n === undefined || t.size < 12 + 4 * n) return null;
      const [g, a, b, c, e, f, h] = Array.from({ length: n }, (_, i) => s15(d, t.at + 12 + 4 * i));
      switch (type) {
        case 0: return (x) => x ** g;
        case 1: return (x) => (x >= -b / a ? (a * x + b) ** g : 0);
        case 2: return (x) => (x >= -b / a ? (a * x + b) ** g + c : c);
        case 3: return (x) => (x >= e ? (a * x + b) ** g : c * x);
        default: return (x) => (x >= e ? (a * x + b) ** g + f : c * x + h);
      }
    }
    return null;
  };
  const [r, g, b] = [xyz("rXYZ"), xyz("gXYZ"), xyz("bXYZ")];
  const curves = [curve("rTRC"), curve("gTRC"), curve("bTRC")];
  if (!r || !g || !b || curves.some((c) => !c)) return null;
  return { toXyzD50: [r[0], g[0], b[0], r[1], g[1], b[1], r[2], g[2], b[2]], curves: curves as [Curve, Curve, Curve] };
}

/** The largest profile read: real ones are kilobytes (a print profile's tables under 1 MiB). */
const MAX_PROFILE_BYTES = 4 << 20;

/** PNG's iCCP profile, inflated a chunk at a time and given up past MAX_PROFILE_BYTES (a zlib bomb of a "profile" is never held). */
async function inflate(deflated: Uint8Array): Promise<Uint8Array> {
  const reader = new Blob([deflated]).stream().pipeThrough(new DecompressionStream("deflate")).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    total += r.value.byteLength;
    if (total > MAX_PROFILE_BYTES) {
      await reader.cancel();
      throw new Error("ICC profile over 4 MiB");
    }
    chunks.push(r.value);
  }
  const out = new Uint8Array(total);
  chunks.reduce((at, c) => (out.set(c, at), at + c.byteLength), 0);
  return out;
}

/** sRGB encoding of linear light, at 4096 steps (12 bits, finer than any 8-bit output step). */
const ENCODE = Uint8ClampedArray.from({ length: 4096 }, (_, i) => {
  const x = i / 4095;
  return Math.round(255 * (x <= 0.0031308 ? 12.92 * x : 1.055 * x ** (1 / 2.4) - 0.055));
});

/** The conversion to sRGB a tag calls for; null when there is nothing to do or nothing this path can do. */
export async function colourConversion(tag: ColourTag | null): Promise<ColourConversion | null> {
  if (!tag) return null;
  let matrix: Mat;
  let curves: [Curve, Curve, Curve];
  try {
    if ("nclx" in tag) {
      const primaries = PRIMARIES[tag.nclx.primaries];
      const transfer = TRANSFERS[tag.nclx.transfer];
      // 2 = unspecified: nothing to convert from.
      if (!primaries || !transfer) return null;
      matrix = mul(inverse(SRGB_D65), primaries);
      curves = [transfer, transfer, transfer];
    } else {
      const icc = "icc" in tag ? tag.icc : await inflate(tag.iccDeflated);
      // A table (`A2B0`) is what Little CMS converts by when a profile has one; a profile with
      // only a table (no colorants) has no other way.
      const table = await lutConversion({ icc }, "RGB ");
      if (table) return table;
      const parsed = parseIcc(icc);
      if (!parsed) return null;
      matrix = mul(inverse(SRGB_D50), parsed.toXyzD50);
      curves = parsed.curves;
    }
  } catch {
    return null;
  }
  const luts = curves.map((c) => Float32Array.from({ length: 256 }, (_, i) => Math.min(1, Math.max(0, c(i / 255)))));
  // Already sRGB (an sRGB profile, BT.709 primaries with the sRGB curve): nothing to do.
  const identity = matrix.every((v, k) => Math.abs(v - (k % 4 === 0 ? 1 : 0)) < 0.003);
  const srgbCurves = luts.every((lut) => lut.every((v, i) => Math.abs(v - srgbDecode(i / 255)) < 0.5 / 255));
  if (identity && srgbCurves) return null;
  const [m0, m1, m2, m3, m4, m5, m6, m7, m8] = matrix;
  const [lr, lg, lb] = luts;
  const q = (v: number) => ENCODE[v <= 0 ? 0 : v >= 1 ? 4095 : (v * 4095 + 0.5) | 0];
  return (data, count) => {
    for (let i = 0, end = count * 4; i < end; i += 4) {
      const r = lr[data[i]];
      const g = lg[data[i + 1]];
      const b = lb[data[i + 2]];
      data[i] = q(m0 * r + m1 * g + m2 * b);
      data[i + 1] = q(m3 * r + m4 * g + m5 * b);
      data[i + 2] = q(m6 * r + m7 * g + m8 * b);
    }
  };
}

/** Lab (D50) to XYZ (D50), CIE 15. */
function labToXyz(L: number, a: number, b: number): [number, number, number] {
  const fy = (L + 16) / 116;
  const fx = fy + a / 500;
  const fz = fy - b / 200;
  const f = (t: number) => (t > 6 / 29 ? t ** 3 : 3 * (6 / 29) ** 2 * (t - 4 / 29));
  return [0.9642 * f(fx), f(fy), 0.8249 * f(fz)];
}

/**
 * A profile's device-to-PCS table (`A2B0`, perceptual, as sharp converts: its relative `A2B1`
 * left a CMYK photo 6.3 off on saturated pixels, the perceptual one 0.3) as a conversion of
 * `space`'s values (RGB, or CMYK ink amounts) in RGBA slots to sRGB in place.
 */
async function lutConversion(tag: ColourTag | null, space: "RGB " | "CMYK"): Promise<((data: Uint8Array | Uint8ClampedArray, pixels: number) => void) | null> {
  if (!tag || "nclx" in tag) return null;
  try {
    const icc = "icc" in tag ? tag.icc : await inflate(tag.iccDeflated);
    const profile = readIcc(icc);
    if (!profile || profile.space !== space || (profile.pcs !== "Lab " && profile.pcs !== "XYZ ")) return null;
    const { d, sig, tags } = profile;
    const lab = profile.pcs === "Lab ";
    const at = (tags.get("A2B0") ?? tags.get("A2B1"))?.at;
    if (at === undefined || at + 48 > icc.length) return null;
    const type = sig(at);
    if (type !== "mft2" && type !== "mft1") return null;
    const wide = type === "mft2";
    const inCh = space === "CMYK" ? 4 : 3;
    const [inputs_, outCh, grid] = [icc[at + 8], icc[at + 9], icc[at + 10]];
    // Print profiles use 9-17 points a side; 33 (3.4 M entries for CMYK) is the most taken,
    // read in place, never copied: a profile is the file's, and a file may be hostile.
    if (inputs_ !== inCh || outCh !== 3 || grid < 2 || grid > 33) return null;
    const n = wide ? d.getUint16(at + 48) : 256;
    const m = wide ? d.getUint16(at + 50) : 256;
    const size = wide ? 2 : 1;
    const max = wide ? 65535 : 255;
    let p = at + (wide ? 52 : 48);
    const value = (i: number) => (wide ? d.getUint16(i) : icc[i]) / max;
    const cells = grid ** inCh;
    const need = (inCh * n + cells * 3 + 3 * m) * size;
    if (p + need > icc.length || n < 2 || m < 2) return null;
    // Input curves as 256-entry tables (our values are 8-bit), interpolated in the profile's own.
    const curve = (start: number, entries: number) => (x: number) => {
      const q = x * (entries - 1);
      const i = Math.min(entries - 2, Math.floor(q));
      return value(start + i * size) + (value(start + (i + 1) * size) - value(start + i * size)) * (q - i);
    };
    const inputs = Array.from({ length: inCh }, (_, c) => Float32Array.from({ length: 256 }, (_, v) => curve(p + c * n * size, n)(v / 255)));
    p += inCh * n * size;
    const clutAt = p;
    const clut = (i: number) => value(clutAt + i * size);
    p += cells * 3 * size;
    const outputs = [0, 1, 2].map((c) => curve(p + c * m * size, m));
    const toSrgb = inverse(SRGB_D50);
    const out = new Float32Array(3);
    const f = new Float32Array(inCh);
    const step = Array.from({ length: inCh }, (_, c) => grid ** (inCh - 1 - c) * 3);
    const corners = 1 << inCh;
    /** The PCS colour (XYZ, D50) of one pixel's values. */
    const pcs = (data: Uint8Array | Uint8ClampedArray, i: number): [number, number, number] => {
      // The grid cell and the position inside it, per channel.
      let base = 0;
      for (let c = 0; c < inCh; c++) {
        const x = inputs[c][data[i + c]] * (grid - 1);
        const lo = Math.min(grid - 2, Math.floor(x));
        f[c] = x - lo;
        base = base * grid + lo;
      }
      out[0] = out[1] = out[2] = 0;
      // Multilinear: the 8 (RGB) or 16 (CMYK) corners of the cell, each weighted by its nearness.
      for (let k = 0; k < corners; k++) {
        let w = 1;
        let at = base * 3;
        for (let c = 0; c < inCh; c++) {
          const up = (k >> (inCh - 1 - c)) & 1;
          w *= up ? f[c] : 1 - f[c];
          if (up) at += step[c];
        }
        if (w === 0) continue;
        out[0] += w * clut(at);
        out[1] += w * clut(at + 1);
        out[2] += w * clut(at + 2);
      }
      const [a, b, c] = [outputs[0](out[0]), outputs[1](out[1]), outputs[2](out[2])];
      // ICC.1 10.10: lut16's legacy Lab encoding (0xFF00 = 100), lut8's 0-255; XYZ u1Fixed15.
      if (!lab) return [(a * 65535) / 32768, (b * 65535) / 32768, (c * 65535) / 32768];
      if (!wide) return labToXyz(a * 100, b * 255 - 128, c * 255 - 128);
      const v = (x: number) => (x * 65535) / 65280;
      return labToXyz(v(a) * 100, v(b) * 255 - 128, v(c) * 255 - 128);
    };
    // Black point compensation, as Little CMS applies it (cmsDetectBlackPoint): the profile's
    // black (no light: all inks full, or RGB 0, made neutral: its lightness kept, a* and b* 0)
    // goes to sRGB's black and everything is scaled between it and white in XYZ. Without it
    // every dark tone of a print profile came out lighter than any colour-managed decoder shows
    // it (+5 to +10 per channel on the test's CMYK photo).
    const white = [0.9642, 1, 0.8249];
    const y = pcs(new Uint8Array(space === "CMYK" ? [255, 255, 255, 255] : [0, 0, 0, 255]), 0)[1];
    const black = white.map((w) => w * y);
    return (data, pixels) => {
      for (let i = 0; i < pixels * 4; i += 4) {
        const xyz = pcs(data, i);
        for (let ch = 0; ch < 3; ch++) xyz[ch] = ((xyz[ch] - black[ch]) * white[ch]) / (white[ch] - black[ch]);
        for (let ch = 0; ch < 3; ch++) {
          const v = toSrgb[ch * 3] * xyz[0] + toSrgb[ch * 3 + 1] * xyz[1] + toSrgb[ch * 3 + 2] * xyz[2];
          data[i + ch] = ENCODE[v <= 0 ? 0 : v >= 1 ? 4095 : (v * 4095 + 0.5) | 0];
        }
        // CMYK's fourth channel was black ink; an RGB source's alpha stays as it is.
        if (space === "CMYK") data[i + 3] = 255;
      }
    };
  } catch {
    return null;
  }
}

/** A CMYK profile's conversion of ink amounts (a CMYK or YCCK JPEG's rows) to sRGB. */
export const inkConversion = (tag: ColourTag | null): Promise<InkConversion | null> => lutConversion(tag, "CMYK");
