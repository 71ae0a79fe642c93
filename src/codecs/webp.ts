/**
 * @module codecs/webp
 * WebP stills through our libwebp build (native/webp/): decoded straight to 1/1, 1/2, 1/4 or
 * 1/8 of their size by libwebp's own rescaler, which runs row by row inside the decoder, so
 * only the scaled RGBA is ever whole (the pipeline crops and resamples it to the exact output,
 * as for JPEG). A lossy 24 MP photo asked at 1200w decodes into 1500x1000 pixels.
 */
import { wasmModules } from "../../wasm/modules";
import { BAND_ROWS } from "./jpeg";
import { bandsOf, type RowDecoder, type RowEncoder } from "./rows";
import { CodecError, copyIn, instantiateStandalone, type StandaloneExports } from "./standalone";

interface WebpExports extends StandaloneExports {
  dec_open(data: number, len: number): number;
  dec_width(d: number): number;
  dec_height(d: number): number;
  dec_has_animation(d: number): number;
  dec_decode(d: number, data: number, len: number, outW: number, outH: number): number;
  dec_pixels(d: number): number;
  dec_stride(d: number): number;
  dec_close(d: number): void;
}

/** libwebp's VP8StatusCode (src/webp/decode.h). */
const STATUS = ["ok", "out of memory", "invalid parameter", "bitstream error", "unsupported feature", "suspended", "user abort", "not enough data (truncated file)"];

export function openWebp(bytes: ArrayBuffer, denom: number, expect: { width: number; height: number } | null): RowDecoder {
  const e = instantiateStandalone<WebpExports>(wasmModules.webp);
  const src = copyIn(e, new Uint8Array(bytes));
  const d = e.dec_open(src, bytes.byteLength);
  if (!d) throw new CodecError("not a WebP bitstream libwebp can read");
  const [fullW, fullH] = [e.dec_width(d), e.dec_height(d)];
  if (expect && (fullW !== expect.width || fullH !== expect.height)) {
    throw new CodecError(`the bitstream is ${fullW}x${fullH} where the header declares ${expect.width}x${expect.height}`);
  }
  if (e.dec_has_animation(d)) throw new CodecError("animated WebP");
  // The same rounding as the pipeline's shrink-on-load plan (and libjpeg's).
  const width = Math.ceil(fullW / denom);
  const height = Math.ceil(fullH / denom);
  const status = e.dec_decode(d, src, bytes.byteLength, width, height);
  if (status !== 0) throw new CodecError(STATUS[status] ?? `status ${status}`);
  e.free(src);
  const pixels = e.dec_pixels(d);
  const stride = e.dec_stride(d);
  if (stride !== width * 4) throw new CodecError(`unexpected stride ${stride}`);
  return {
    width,
    height,
    read: bandsOf(() => new Uint8Array(e.memory.buffer, pixels, height * stride), width, height, BAND_ROWS),
    get memoryBytes() {
      return e.memory.buffer.byteLength;
    },
    jsBytes: 0,
  };
}

interface WebpRowsExports extends StandaloneExports {
  rows_enc_new(width: number, height: number, orientation: number, alpha: number, quality: number, method: number, maxRows: number, lowMemory: number, sharp: number): number;
  rows_enc_band(e: number): number;
  rows_enc_write(e: number, rows: number): number;
  rows_enc_finish(e: number): number;
  rows_enc_data(e: number): number;
  rows_enc_size(e: number): number;
  rows_enc_error(e: number): number;
  rows_enc_free(e: number): void;
}

/** Where the sharp RGB to YUV conversion is used: nowhere, in rows where colours meet (native/webpanim/glue.c `colour_edges`), or everywhere. */
export type SharpYuv = "off" | "edges" | "everywhere";
const SHARP_YUV_MODE: Record<SharpYuv, number> = { off: 0, edges: 1, everywhere: 2 };

/** libwebp's WebPEncodingError (src/webp/encode.h). */
const ENCODE_ERROR = ["ok", "out of memory", "out of memory (bitstream)", "null parameter", "invalid configuration", "bad dimension", "partition 0 overflow", "partition overflow", "bad write", "file too big", "user abort"];

/**
 * A still WebP written from rows (our libwebp encoder build, native/webpanim/): a `width` x
 * `height` image of stored rows shown under EXIF orientation `orientation`, which libwebp's
 * YUV picture takes in display orientation as the rows arrive. 1.5 bytes a pixel (2.5 with
 * `alpha`) instead of RGBA's 4, and no whole RGBA image anywhere. `lowMemory` drops libwebp's
 * token buffer (about 19 bytes per output byte) at the price of a second analysis pass: 1.4-2x
 * the encode time at method 4 (native/webpanim/glue.c), the same bytes within 0.2%. `sharp`:
 * where libwebp's sharp (iterative) RGB to YUV 4:2:0 conversion replaces its averaging one
 * (`SharpYuv`), in chunks of rows with enough context that each row comes out as a
 * whole-picture conversion would make it.
 */
export function webpRowEncoder(width: number, height: number, orientation: number, alpha: boolean, quality: number, method: number, lowMemory: boolean, sharp: SharpYuv): RowEncoder {
  const e = instantiateStandalone<WebpRowsExports>(wasmModules.webpAnim);
  const bandRows = BAND_ROWS;
  const enc = e.rows_enc_new(width, height, orientation, alpha ? 1 : 0, quality, method, bandRows, lowMemory ? 1 : 0, SHARP_YUV_MODE[sharp]);
  if (!enc) throw new CodecError(`cannot make a ${width}x${height} WebP picture (out of memory or over 16383 a side)`);
  const band = e.rows_enc_band(enc);
  return {
    bandRows,
    write(rows, count) {
      new Uint8Array(e.memory.buffer, band, count * width * 4).set(rows.subarray(0, count * width * 4));
      if (!e.rows_enc_write(enc, count)) throw new CodecError(`WebP rows refused (${count} rows)`);
    },
    finish() {
      if (!e.rows_enc_finish(enc)) throw new CodecError(`WebP encode failed: ${ENCODE_ERROR[e.rows_enc_error(enc)] ?? e.rows_enc_error(enc)}`);
      const out = new Uint8Array(e.memory.buffer, e.rows_enc_data(enc), e.rows_enc_size(enc)).slice().buffer;
      e.rows_enc_free(enc);
      return out;
    },
    get memoryBytes() {
      return e.memory.buffer.byteLength;
    },
    jsBytes: 0,
  };
}
