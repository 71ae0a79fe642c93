/**
 * @module produce/ssim
 * Mean SSIM (Wang, Bovik, Sheikh, Simoncelli 2004, eq. 13) of two same-sized RGBA images on
 * their luma (BT.601 weights, as the bench's ssim.js), over 8x8 windows every 4 pixels (the
 * sampling libwebp's and libaom's tools use) with uniform weights: cheap enough for the
 * background re-encode to judge "no loss of quality" in a few tens of ms per megapixel.
 */
import type { Pixels } from "../codecs";

const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;
const WINDOW = 8;
const STEP = 4;

function luma(p: Pixels): Float32Array {
  const out = new Float32Array(p.width * p.height);
  const d = p.data;
  for (let i = 0, j = 0; i < out.length; i++, j += 4) out[i] = 0.299 * d[j] + 0.587 * d[j + 1] + 0.114 * d[j + 2];
  return out;
}

export function meanSsim(a: Pixels, b: Pixels): number {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`SSIM of ${a.width}x${a.height} and ${b.width}x${b.height}`);
  const { width, height } = a;
  const x = luma(a);
  const y = luma(b);
  // Images smaller than a window are one window.
  const wx = Math.min(WINDOW, width);
  const wy = Math.min(WINDOW, height);
  const n = wx * wy;
  let sum = 0;
  let count = 0;
  for (let top = 0; top + wy <= height; top += STEP) {
    for (let left = 0; left + wx <= width; left += STEP) {
      let sx = 0;
      let sy = 0;
      let sxx = 0;
      let syy = 0;
      let sxy = 0;
      for (let r = top; r < top + wy; r++) {
        const row = r * width;
        for (let c = left; c < left + wx; c++) {
          const u = x[row + c];
          const v = y[row + c];
          sx += u;
          sy += v;
          sxx += u * u;
          syy += v * v;
          sxy += u * v;
        }
      }
      const mx = sx / n;
      const my = sy / n;
      const vx = sxx / n - mx * mx;
      const vy = syy / n - my * my;
      const cxy = sxy / n - mx * my;
      sum += ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
      count++;
    }
  }
  return sum / count;
}
