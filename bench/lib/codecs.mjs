// The worker's own encoders (@jsquash builds), run in Node for the equal-quality search, so the
// bytes compared are those of the codecs the product ships, not libvips's.
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

/** Encodes RGBA pixels with the product's settings but the given quality. */
export async function encodeWith(format, pixels, quality) {
  await init();
  if (format === "avif") return avifEncode(pixels, { quality, speed: 8 });
  if (format === "webp") return webpEncode(pixels, { quality, method: 4 });
  return jpegEncode(pixels, { quality });
}
