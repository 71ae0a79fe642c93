/**
 * @module codecs/jpeg
 * JPEG through our libjpeg-turbo build (native/jpeg/): decoded at 1/1, 1/2, 1/4 or 1/8 scale in
 * the DCT domain and handed over a band of rows at a time; encoded a band of rows at a time.
 * This is what keeps a 24 MP camera JPEG's job at the size of its output (libvips'
 * shrink-on-load): at 1/4 scale a 6000x4000 photo decodes to 1500x1000 rows, never to 96 MB
 * of RGBA.
 */
import { wasmModules } from "../../wasm/modules";
import type { InkConversion, RowDecoder, RowEncoder } from "./rows";
import { CodecError, copyIn, instantiateStandalone, type StandaloneExports } from "./standalone";

interface JpegExports extends StandaloneExports {
  dec_open(data: number, len: number, maxScans: number): number;
  dec_width(d: number): number;
  dec_height(d: number): number;
  dec_start(d: number, denom: number): number;
  dec_out_height(d: number): number;
  dec_cmyk(d: number): number;
  dec_read(d: number, out: number, max: number): number;
  dec_close(d: number): void;
  enc_start(w: number, h: number, quality: number, mode: number): number;
  enc_write(e: number, rows: number, n: number): void;
  enc_finish(e: number): number;
  enc_size(e: number): number;
  enc_free(e: number): void;
}

/** Rows handed over per call: two MCU rows of 4:2:0, few enough to stay small at any width. */
export const BAND_ROWS = 16;

/** The DCT scales libjpeg can decode at (T.81 IDCT sizes 8/8, 4/8, 2/8, 1/8). */
export const JPEG_SCALES = [8, 4, 2, 1] as const;

/** `maxScans`: a file with more scans fails (libjpeg-turbo's advice for untrusted input). */
/**
 * CMYK ink amounts (0 = none) in RGBA slots to RGB in place, with no profile: each colour
 * channel times the black one, both as the light they let through (what libjpeg's own
 * CMYK-to-RGB would give).
 */
export const plainCmyk: InkConversion = (data, count) => {
  for (let i = 0; i < count * 4; i += 4) {
    const k = 255 - data[i + 3];
    data[i] = ((255 - data[i]) * k + 127) / 255;
    data[i + 1] = ((255 - data[i + 1]) * k + 127) / 255;
    data[i + 2] = ((255 - data[i + 2]) * k + 127) / 255;
    data[i + 3] = 255;
  }
};

/**
 * A CMYK or YCCK file's rows come out of libjpeg as ink amounts; `cmyk` turns each band into
 * RGBA (the file's ICC profile, produce/colour), else `plainCmyk` does.
 */
export function openJpeg(bytes: ArrayBuffer, denom: number, maxScans: number, cmyk?: InkConversion): RowDecoder {
  const e = instantiateStandalone<JpegExports>(wasmModules.jpeg);
  const src = copyIn(e, new Uint8Array(bytes));
  const d = e.dec_open(src, bytes.byteLength, maxScans);
  const width = e.dec_start(d, denom);
  const height = e.dec_out_height(d);
  const band = e.malloc(width * 4 * BAND_ROWS);
  if (!band) throw new CodecError("out of memory");
  const ink = e.dec_cmyk(d) ? (cmyk ?? plainCmyk) : null;
  let finished = false;
  return {
    width,
    height,
    read() {
      if (finished) return null;
      const rows = e.dec_read(d, band, BAND_ROWS);
      if (rows === 0) {
        finished = true;
        return null;
      }
      const data = new Uint8Array(e.memory.buffer, band, rows * width * 4);
      ink?.(data, rows * width);
      return { data, rows };
    },
    get memoryBytes() {
      return e.memory.buffer.byteLength;
    },
    jsBytes: 0,
  };
}

/**
 * How libjpeg writes the file (native/jpeg/glue.c `enc_start`): `streamed`, one baseline scan
 * with the standard Huffman tables, holding one MCU row (any size); `optimized`, Huffman tables
 * built for the image; `progressive`, libjpeg's standard progression of scans with optimised
 * tables, the smallest. The last two keep every coefficient (2 bytes each) until the end.
 */
export type JpegCoding = "streamed" | "optimized" | "progressive";
const CODING_MODE: Record<JpegCoding, number> = { streamed: 0, optimized: 1, progressive: 2 };
/**
 * Every file is quantised with mozjpeg's default tables (N. Robidoux's, one for luma and chroma)
 * instead of T.81 Annex K's: at equal SSIMULACRA 2 they cost 0.987x / 1.016x a mozjpeg q85
 * JPEG's bytes on Kodak / Unsplash at 1200w, against 1.043x / 1.127x with Annex K's (bench
 * section 11), and a quality number means what it means to mozjpeg, the quality reference.
 */
const REFERENCE_TABLES = 4;

/** Encodes rows of RGBA as they come, coded as `coding` says. */
export function jpegRowEncoder(width: number, height: number, quality: number, coding: JpegCoding): RowEncoder {
  const e = instantiateStandalone<JpegExports>(wasmModules.jpeg);
  const enc = e.enc_start(width, height, quality, CODING_MODE[coding] | REFERENCE_TABLES);
  const band = e.malloc(width * 4 * BAND_ROWS);
  if (!band) throw new CodecError("out of memory");
  return {
    bandRows: BAND_ROWS,
    /** Takes up to BAND_ROWS rows of RGBA. */
    write(rows: Uint8Array | Uint8ClampedArray, count: number) {
      new Uint8Array(e.memory.buffer, band, count * width * 4).set(rows.subarray(0, count * width * 4));
      e.enc_write(enc, band, count);
    },
    /** The finished file, copied out of codec memory. */
    finish(): ArrayBuffer {
      const ptr = e.enc_finish(enc);
      return new Uint8Array(e.memory.buffer, ptr, e.enc_size(enc)).slice().buffer;
    },
    get memoryBytes() {
      return e.memory.buffer.byteLength;
    },
    jsBytes: 0,
  };
}
