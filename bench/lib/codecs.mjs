// The worker's own encoders (@jsquash builds), run in Node for the equal-quality search and the
// quality calibration, so the bytes compared are those of the codecs the product ships, not libvips's.
// AVIF: the worker now codes with our libaom build (codecs/av1seq) set as libavif sets libaom, whose
// files keep within 5% of @jsquash/avif's bytes at the same settings (test/avif-still.test.ts;
// 1.2-1.8% smaller on the photos measured), so @jsquash/avif stands in for it here.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import avifEncode, { init as initAvif } from "@jsquash/avif/encode.js";
import jpegEncode, { init as initJpeg } from "@jsquash/jpeg/encode.js";
import webpEncode, { init as initWebp } from "@jsquash/webp/encode.js";

const require = createRequire(import.meta.url);
const compile = (spec) => WebAssembly.compile(readFileSync(require.resolve(spec)));

let ready;
function init() {
  ready ??= Promise.all([
    compile("@jsquash/avif/codec/enc/avif_enc.wasm").then((m) => initAvif(m)),
    compile("@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm").then((m) => initJpeg(m)),
    compile("@jsquash/webp/codec/enc/webp_enc_simd.wasm").then((m) => initWebp(m)),
  ]);
  return ready;
}

/**
 * Encodes RGBA pixels as the worker does (src/codecs: @jsquash's defaults plus quality and
 * speed), at the given quality; `speed` is libaom's cpu-used for AVIF (default 8, the on-demand
 * speed) and libwebp's method for WebP (default 4).
 */
export async function encodeWith(format, pixels, quality, speed) {
  await init();
  if (format === "avif") return avifEncode(pixels, { quality, speed: speed ?? 8 });
  if (format === "webp") return webpEncode(pixels, { quality, method: speed ?? 4 });
  return jpegEncode(pixels, { quality });
}

/** Encodes with explicit encoder options over @jsquash's defaults (bench/options.mjs). */
export async function encodeRaw(format, pixels, options) {
  await init();
  if (format === "avif") return avifEncode(pixels, options);
  if (format === "webp") return webpEncode(pixels, options);
  return jpegEncode(pixels, options);
}
