/**
 * @module formats/jpeg
 * JPEG (ITU T.81, JFIF), everything about it: magic bytes, header probe (size, EXIF
 * orientation, scan layout), codecs and their cost. Decoded by our libjpeg-turbo build at 1/1
 * to 1/8 scale in the DCT domain, a band of rows at a time (codecs/jpeg); encoded by the same
 * build a band of rows at a time: progressive up to 4 MP, one streamed scan above.
 */
import { wasmModules } from "../../wasm/modules";
import { jpegRowEncoder, openJpeg, type JpegCoding } from "../codecs/jpeg";
import { encodeWhole } from "../codecs/rows";
import { ascii, exifOrientation, HeaderError, need, u16be, type ImageHeader, type JpegLayout } from "./probe";
import type { FormatSpec } from "./spec";
import { FORMAT_NAMES } from "./id";
import { jpegColour } from "./colour-tag";

/**
 * Above this many output pixels a JPEG is written as one streamed baseline scan (8.7 MiB of WASM
 * for 12 MP) instead of progressive scans, which keep every coefficient until the end (3 bytes a
 * pixel at 4:2:0: 36 MiB for 12 MP). Other formats' row encoders take over at the same size.
 */
export const JPEG_ROW_ENCODE_PIXELS = 4_000_000;

// ITU T.81 B.1.1.3: SOFn markers are C0-CF except DHT (C4), JPG (C8) and DAC (CC).
function isSof(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/**
 * From the SOF segment at `i` (T.81 B.2.2: Nf components, each with H and V sampling factors)
 * and the first SOS after it (B.2.3: Ns components in that scan). SOF2/6/10/14 are progressive;
 * a first scan with fewer components than the frame means more scans follow. When the SOS is
 * not found in the bytes at hand, the costlier answer is given.
 */
function jpegLayout(b: Uint8Array, i: number, marker: number): JpegLayout {
  const nf = b[i + 7];
  const fields: { h: number; v: number }[] = [];
  for (let c = 0; c < nf && i + 10 + c * 3 < b.length; c++) fields.push({ h: b[i + 9 + c * 3] >> 4, v: b[i + 9 + c * 3] & 15 });
  const progressive = marker === 0xc2 || marker === 0xc6 || marker === 0xca || marker === 0xce;
  let firstScanComponents = -1;
  let scans = 0;
  for (let j = i + u16be(b, i); j + 4 < b.length; ) {
    if (b[j] !== 0xff) break;
    const m = b[j + 1];
    if (m === 0xff) {
      j++;
      continue;
    }
    if (m === 0xd9) break;
    if (m === 0xda) {
      if (scans++ === 0) firstScanComponents = b[j + 4];
      // Only a file of several scans is walked further: past its entropy-coded data, to the
      // next marker (T.81 B.1.1.2: 0xFF is followed by 0x00 stuffing or a restart marker there).
      if (!progressive && firstScanComponents === nf) break;
      j += 2 + u16be(b, j + 2);
      while (j + 1 < b.length && !(b[j] === 0xff && b[j + 1] !== 0 && (b[j + 1] < 0xd0 || b[j + 1] > 0xd7))) j++;
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      j += 2;
      continue;
    }
    j += 2 + u16be(b, j + 2);
  }
  if (scans > MAX_JPEG_SCANS) throw new HeaderError(`a JPEG of ${scans} scans; at most ${MAX_JPEG_SCANS} are decoded`);
  // A component without its factors (a cut header) is priced as a full-resolution one.
  const sampling = Array.from({ length: nf }, (_, c): [number, number] => (fields[c] ? [Math.max(1, fields[c].h), Math.max(1, fields[c].v)] : [1, 1]));
  return { multiScan: progressive || firstScanComponents !== nf, sampling, scans };
}

/**
 * Most scans a JPEG may have. Each is a pass of entropy decoding over the whole image (about
 * 1.6 ms per megapixel in workerd even for a scan of a few bits), and a progressive file of
 * 1,200 tiny refinement scans took 31 s of CPU; encoders write up to about a dozen (libjpeg's
 * default progression 10, mozjpeg's optimised ones fewer than 70). libjpeg-turbo's own
 * guidance for untrusted input is to cap scans (djpeg -maxscans, TJPARAM_SCANLIMIT); our
 * decoder applies the same cap (native/jpeg/glue.c).
 */
export const MAX_JPEG_SCANS = 100;

/** Entropy decoding of one scan beyond the first dozen, per megapixel of source (see MAX_JPEG_SCANS). */
const MS_PER_SCAN_MP = 1.6;

function parseJpeg(b: Uint8Array): ImageHeader {
  let i = 2;
  let orientation: number[] = [];
  for (;;) {
    need(b, i + 2, "JPEG marker");
    if (b[i] !== 0xff) throw new HeaderError("JPEG marker expected");
    let marker = b[i + 1];
    // T.81 B.1.1.2: any number of 0xFF fill bytes may precede a marker.
    while (marker === 0xff) {
      i++;
      need(b, i + 2, "JPEG marker");
      marker = b[i + 1];
    }
    i += 2;
    // Standalone markers carry no length: TEM, RSTn, SOI.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;
    if (marker === 0xd9 || marker === 0xda) throw new HeaderError("JPEG has no frame header before scan");
    need(b, i + 2, "JPEG segment length");
    const len = u16be(b, i);
    if (len < 2) throw new HeaderError("JPEG segment length < 2");
    if (isSof(marker)) {
      need(b, i + 8, "JPEG SOF");
      return { format: "jpg", height: u16be(b, i + 3), width: u16be(b, i + 5), hasAlpha: false, animated: false, orientation, jpeg: jpegLayout(b, i, marker) };
    }
    // APP1 "Exif\0\0" (CIPA DC-008 4.7.2) carries the TIFF structure with the Orientation tag.
    if (marker === 0xe1 && ascii(b, i + 2, 6) === "Exif\u0000\u0000") {
      orientation = exifOrientation(b.subarray(i + 8, Math.min(b.length, i + len)));
    }
    i += len;
  }
}

/**
 * Bytes per 8x8 block of one component in the coefficient store of our libjpeg-turbo glue
 * (native/jpeg/glue.c `Packed`) at the component's scaled block size: the coefficients the
 * reduced IDCT reads (1 at size 1, 25 at size 2) and a bit for each other one, or libjpeg's own
 * 64 coefficients of 2 bytes.
 */
const blockBytes = (size: number): number => (size === 1 ? 10 : size === 2 ? 58 : 128);

/**
 * The coefficients of a multi-scan file decoded at 1/denom: per component, its blocks at its
 * scaled block size, which libjpeg-turbo doubles for subsampled components while the ratio
 * allows (jdmaster.c jpeg_calc_output_dimensions: 4:2:0 chroma at 1/8 is read at size 2), and
 * the window of five block rows of each packed component (jdcoefct.c's access for block smoothing).
 */
export function coefficientBytes(width: number, height: number, layout: JpegLayout, denom: number): number {
  if (!layout.multiScan) return 0;
  const hMax = Math.max(...layout.sampling.map(([h]) => h));
  const vMax = Math.max(...layout.sampling.map(([, v]) => v));
  const min = 8 / denom;
  let sum = 0;
  for (const [h, v] of layout.sampling) {
    let size = min;
    while (size < 8 && (hMax * min) % (h * size * 2) === 0 && (vMax * min) % (v * size * 2) === 0) size *= 2;
    const across = Math.ceil((width * h) / hMax / 8);
    sum += across * Math.ceil((height * v) / vMax / 8) * blockBytes(size) + (size <= 2 ? 5 * v * across * 128 : 0);
  }
  return sum;
}

/**
 * Our libjpeg-turbo build (codecs/jpeg): its initial memory, the copy of the file, the
 * coefficients when the file has several scans (`coefficientBytes`), and a few rows of the
 * scaled width (libjpeg's own buffers and our band). The small allocations grow memory in
 * steps, so 15% is added to them; the coefficients are a few large arrays (2% for MCU padding).
 * Measured: 24 MP progressive 4:2:0 at 1/1 70.9 MiB, 12 MP progressive at 1/2 37.9 MiB.
 */
export function streamedJpegMemory(width: number, height: number, sourceBytes: number, scaledWidth: number, layout: JpegLayout): number {
  const denom = [1, 2, 4, 8].find((d) => Math.ceil(width / d) <= scaledWidth) ?? 8;
  // 2e6: the memory's 2 MiB start (codecs/standalone), libjpeg's own state inside it.
  return 1.02 * coefficientBytes(width, height, layout, denom) + 1.15 * (2e6 + sourceBytes + scaledWidth * 4 * 64);
}

/**
 * How a JPEG of `pixels` is coded at `speed`. Up to JPEG_ROW_ENCODE_PIXELS, speed 0 (the
 * default) writes progressive scans and speed 1 one scan, both with Huffman tables built for the
 * image; at equal SSIMULACRA 2 (12 photos, against a mozjpeg baseline JPEG of the same pixels)
 * progressive costs 1.048x mozjpeg's bytes and one optimised scan 1.083x (bench/results/jpeg-coding.md).
 * Above, one streamed scan: the other two would keep every coefficient for a few percent.
 */
export const jpegCoding = (pixels: number, speed: number): JpegCoding =>
  pixels > JPEG_ROW_ENCODE_PIXELS ? "streamed" : speed === 0 ? "progressive" : "optimized";

/**
 * libjpeg-turbo by rows: its buffers and the growing file (measured 8.7 MiB at 12 MP streamed);
 * coded whole, every coefficient besides (1.5 a pixel at 4:2:0, 2 bytes each; measured 7.4-8.4
 * MiB for 1200x1600).
 */
const rowEncoderMemory = (pixels: number) => 4e6 + (pixels > JPEG_ROW_ENCODE_PIXELS ? 0.5 : 3.5) * pixels;

/** Relative encode time by speed: 0 progressive (= 1), 1 one optimised scan. */
const SPEED_FACTOR = [1, 0.6];

export const jpeg: FormatSpec = {
  ...FORMAT_NAMES.jpg,
  universal: true,
  rowScales: [8, 4, 2, 1],
  mime: "image/jpeg",
  mimeAliases: ["image/jpg", "image/pjpeg"],
  supportsAlpha: false,
  canDecode: true,
  sourceRank: 1,
  // T.81 B.1.1.3: SOI (FF D8), then the next marker's FF.
  colourTag: jpegColour,
  sniff: (b) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff,
  parseHeader: parseJpeg,
  codecs: {
    rows: (bytes, denom, _expect, cmyk) => openJpeg(bytes, denom, MAX_JPEG_SCANS, cmyk),
    encode: async (pixels, o, usage) => encodeWhole(jpegRowEncoder(pixels.width, pixels.height, o.quality, jpegCoding(pixels.width * pixels.height, o.speed)), pixels, usage),
    // Rows cannot be turned (a file is written top to bottom) and JPEG has no alpha.
    rowEncoder: {
      small: true,
      takes: (orientation, alpha) => orientation === 1 && !alpha,
      open: (w, h, _orientation, _alpha, o) => jpegRowEncoder(w, h, o.quality, jpegCoding(w * h, o.speed)),
    },
  },
  cost: {
    decodeMsPerMp: 30,
    structureMs: (h) => (Math.max(0, (h.jpeg?.scans ?? 1) - 12) * MS_PER_SCAN_MP * h.width * h.height) / 1e6,
    encodeMsPerMp: 120,
    speedFactor: (speed) => SPEED_FACTOR[speed] ?? 1,
    encodeMemory: (pixels) => rowEncoderMemory(pixels),
    streamedDecoder: (header, sourceBytes, scaledWidth) => ({ decoderBytes: streamedJpegMemory(header.width, header.height, sourceBytes, scaledWidth, header.jpeg!), bandBytes: 0 }),
    rowEncoderMemory: (pixels) => rowEncoderMemory(pixels),
    instances: {
      rows: () => wasmModules.jpeg,
      encode: () => wasmModules.jpeg,
      rowEncoder: wasmModules.jpeg,
    },
  },
};
