/**
 * @module produce/smart-crop
 * `gravity=auto`: where a cover crop goes, chosen by content. smartcrop.js (the `smartcrop` npm
 * package, MIT) scores windows by edges, skin tones and saturation, as libvips' `attention`
 * does, with a rule-of-thirds prior; it runs here on a copy of at most 160 pixels a side of the
 * already resized image (the one the window is cut from), so it costs milliseconds, not a decode.
 * smartcrop draws on a canvas by default; Workers have none, so its three image operations are
 * given here on plain RGBA.
 */
import smartcrop from "smartcrop";
import type { Pixels } from "../codecs";

type Img = { width: number; height: number; data: Uint8ClampedArray };

/** A box-filtered copy at `width` x `height` (smartcrop's prescale: analysis, not display). */
function shrink(src: Img, width: number, height: number): Img {
  const w = Math.max(1, Math.round(width));
  const h = Math.max(1, Math.round(height));
  const out = new Uint8ClampedArray(w * h * 4);
  const sx = src.width / w;
  const sy = src.height / h;
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor(y * sy);
    const y1 = Math.max(y0 + 1, Math.floor((y + 1) * sy));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor(x * sx);
      const x1 = Math.max(x0 + 1, Math.floor((x + 1) * sx));
      let r = 0, g = 0, b = 0, a = 0;
      for (let yy = y0; yy < y1; yy++) {
        for (let xx = x0; xx < x1; xx++) {
          const i = (yy * src.width + xx) * 4;
          r += src.data[i];
          g += src.data[i + 1];
          b += src.data[i + 2];
          a += src.data[i + 3];
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const o = (y * w + x) * 4;
      out[o] = r / n;
      out[o + 1] = g / n;
      out[o + 2] = b / n;
      out[o + 3] = a / n;
    }
  }
  return { width: w, height: h, data: out };
}

const operations = {
  open: (image: Img) => Promise.resolve(image),
  resample: (image: Img, width: number, height: number) => Promise.resolve(shrink(image, width, height)),
  getData: (image: Img) => Promise.resolve(image),
};

/**
 * The longest side smartcrop analyses (its own default is 256): its features are 8-pixel blocks
 * of edges, skin and saturation, and at 160 the analysis took 4-8 ms per thumbnail in the bench's
 * section 10 where 256 took 15-32 ms.
 */
const ANALYSIS_SIDE = 160;

/** The top left corner of the `width` x `height` window of `pixels` that smartcrop scores best. */
export async function smartWindow(pixels: Pixels, width: number, height: number): Promise<{ x: number; y: number }> {
  const s = Math.min(1, ANALYSIS_SIDE / Math.max(pixels.width, pixels.height));
  const image: Img = s < 1 ? shrink(pixels, pixels.width * s, pixels.height * s) : { width: pixels.width, height: pixels.height, data: pixels.data };
  const { topCrop } = await smartcrop.crop(image as never, { width: width * s, height: height * s, imageOperations: operations } as never);
  // The crop comes back in the analysed copy's pixels, at the window's aspect ratio; the window
  // is centred on it, in the full image, and kept inside.
  const cx = (topCrop.x + topCrop.width / 2) / s;
  const cy = (topCrop.y + topCrop.height / 2) / s;
  return {
    x: Math.min(pixels.width - width, Math.max(0, Math.round(cx - width / 2))),
    y: Math.min(pixels.height - height, Math.max(0, Math.round(cy - height / 2))),
  };
}
