/**
 * @module codecs/webp
 * WebP stills through our libwebp build (codecs/webp/): decoded straight to 1/1, 1/2, 1/4 or
 * 1/8 of their size by libwebp's own rescaler, which runs row by row inside the decoder, so
 * only the scaled RGBA is ever whole (the pipeline crops and resamples it to the exact output,
 * as for JPEG). A lossy 24 MP photo asked at 1200w decodes into 1500x1000 pixels.
 */
import { wasmModules } from "../../wasm/modules";
import { BAND_ROWS } from "./jpeg";
import { bandsOf, type RowDecoder } from "./rows";
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
