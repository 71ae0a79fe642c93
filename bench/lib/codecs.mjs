// The worker's own encoders (our builds and @jsquash's), and mozjpeg, the quality reference, run in Node for the equal-quality search and the
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
 * An instance of one of our own builds (native/<name>/<name>.wasm, emscripten STANDALONE_WASM
 * with IMPORTED_MEMORY) in a fresh memory, with the imports src/codecs/standalone gives it.
 */
const compiled = new Map();
function standalone(name) {
  if (!compiled.has(name)) compiled.set(name, new WebAssembly.Module(readFileSync(new URL(`../../native/${name}/${name}.wasm`, import.meta.url))));
  const module = compiled.get(name);
  const memory = new WebAssembly.Memory({ initial: 32, maximum: 16384 });
  const view = () => new DataView(memory.buffer);
  const fail = (what) => () => {
    throw new Error(`${name}: ${what}`);
  };
  const instance = new WebAssembly.Instance(module, {
    env: { memory, js_throw: fail("codec error"), emscripten_notify_memory_growth() {}, setTempRet0() {} },
    wasi_snapshot_preview1: {
      proc_exit: fail("exit"),
      environ_sizes_get: (c, s) => (view().setUint32(c, 0, true), view().setUint32(s, 0, true), 0),
      environ_get: () => 0,
      fd_close: () => 0,
      fd_read: (_fd, _iovs, _n, read) => (view().setUint32(read, 0, true), 0),
      fd_seek: () => 0,
      fd_write: (_fd, iovs, n, written) => {
        let t = 0;
        for (let i = 0; i < n; i++) t += view().getUint32(iovs + i * 8 + 4, true);
        view().setUint32(written, t, true);
        return 0;
      },
    },
  });
  instance.exports._initialize();
  return { e: instance.exports, memory };
}

/**
 * The worker's JPEG encoder (src/formats/jpeg `jpegCoding`): our libjpeg-turbo build, progressive
 * at speed 0 (`mode` 2), one optimised scan at 1.
 */
export function encodeJpegTurbo({ data, width, height }, quality, speed = 0) {
  const { e, memory } = standalone("jpeg");
  // 4: mozjpeg's quantisation tables, as src/codecs/jpeg.ts always asks.
  const enc = e.enc_start(width, height, quality, (speed === 0 ? 2 : 1) | 4);
  const rows = 16;
  const band = e.malloc(width * 4 * rows);
  for (let y = 0; y < height; y += rows) {
    const n = Math.min(rows, height - y);
    new Uint8Array(memory.buffer, band, width * 4 * n).set(data.subarray(y * width * 4, (y + n) * width * 4));
    e.enc_write(enc, band, n);
  }
  const at = e.enc_finish(enc);
  return new Uint8Array(memory.buffer, at, e.enc_size(enc)).slice().buffer;
}

/**
 * The worker's WebP encoder (src/formats/webp: our libwebp build's row encoder, native/webpanim),
 * at `method`; `sharp`: libwebp's sharp RGB to YUV conversion where colours meet (1, the worker's default), everywhere (2) or nowhere (0).
 */
export function encodeWebpRows({ data, width, height }, quality, method = 4, sharp = 1) {
  const { e, memory } = standalone("webpanim");
  const rows = 16;
  const enc = e.rows_enc_new(width, height, 1, 0, quality, method, rows, 0, sharp);
  if (!enc) throw new Error("webp: rows_enc_new failed");
  const band = e.rows_enc_band(enc);
  for (let y = 0; y < height; y += rows) {
    const n = Math.min(rows, height - y);
    new Uint8Array(memory.buffer, band, width * 4 * n).set(data.subarray(y * width * 4, (y + n) * width * 4));
    if (!e.rows_enc_write(enc, n)) throw new Error("webp: rows refused");
  }
  if (!e.rows_enc_finish(enc)) throw new Error(`webp: encode failed (${e.rows_enc_error(enc)})`);
  return new Uint8Array(memory.buffer, e.rows_enc_data(enc), e.rows_enc_size(enc)).slice().buffer;
}

/**
 * Encodes RGBA pixels as the worker does (WebP and JPEG: our own builds; AVIF: @jsquash/avif
 * standing in for ours, its defaults plus quality and speed), at the given quality; `speed` is libaom's cpu-used for AVIF (default 8, the on-demand
 * speed) and libwebp's method for WebP (default 4).
 */
export async function encodeWith(format, pixels, quality, speed) {
  await init();
  if (format === "avif") return avifEncode(pixels, { quality, speed: speed ?? 8 });
  if (format === "webp") return encodeWebpRows(pixels, quality, speed ?? 4, 1);
  if (format === "jpg") return encodeJpegTurbo(pixels, quality, speed ?? 0);
  // "mozjpeg": the reference a quality level names (@jsquash/jpeg's defaults, progressive).
  return jpegEncode(pixels, { quality });
}

/** Encodes with explicit encoder options over @jsquash's defaults (bench/options.mjs). */
export async function encodeRaw(format, pixels, options) {
  await init();
  if (format === "avif") return avifEncode(pixels, options);
  if (format === "webp") return webpEncode(pixels, options);
  return jpegEncode(pixels, options);
}
