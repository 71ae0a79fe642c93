/**
 * @module formats/webp
 * WebP (RFC 9649: the RIFF container, VP8 lossy and VP8L lossless bitstreams, animation),
 * everything about it: magic bytes, header probe, codecs and their cost. Stills are decoded by
 * our libwebp build straight to a scaled size (codecs/webp) and encoded by rows into our libwebp
 * build (a YUV picture filled a band at a time, codecs/webp webpRowEncoder); animations are
 * decoded and encoded frame by frame by our libwebp animation build (codecs/animation).
 */
import { wasmModules } from "../../wasm/modules";
import { firstFrame, openWebpAnimation, webpAnimationEncoder } from "../codecs/animation";
import { hasTransparency } from "../codecs/alpha";
import { encodeWhole } from "../codecs/rows";
import { openWebp, webpRowEncoder, type SharpYuv } from "../codecs/webp";
import { ascii, exifOrientation, HeaderError, need, u16le, u24le, u32le, type ImageHeader } from "./probe";
import type { FormatSpec } from "./spec";
import { FORMAT_NAMES } from "./id";
import { webpColour } from "./colour-tag";

function parseWebp(b: Uint8Array): ImageHeader {
  need(b, 30, "WebP chunk header");
  const chunk = ascii(b, 12, 4);
  if (chunk === "VP8X") {
    const flags = b[20];
    const width = u24le(b, 24) + 1;
    const height = u24le(b, 27) + 1;
    return {
      format: "webp",
      width,
      height,
      hasAlpha: (flags & 0x10) !== 0,
      animated: (flags & 0x02) !== 0,
      animation: flags & 0x02 ? webpAnimation(b, width, height) : undefined,
      // The EXIF chunk usually follows the image data (WebP container spec, "Extended format").
      orientation: flags & 0x08 ? webpExifOrientation(b) : [],
      // Unknown when the image chunk is past the bytes at hand: the costlier answer.
      lossless: webpChunk(b, "VP8 ") === undefined,
    };
  }
  if (chunk === "VP8L") {
    // WebP lossless bitstream spec 3.1: signature 0x2f then 14-bit width-1, 14-bit height-1, alpha bit.
    if (b[20] !== 0x2f) throw new HeaderError("VP8L signature missing");
    const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
    return {
      format: "webp",
      width: (bits & 0x3fff) + 1,
      height: ((bits >>> 14) & 0x3fff) + 1,
      hasAlpha: ((bits >>> 28) & 1) === 1,
      animated: false,
      orientation: [],
      lossless: true,
    };
  }
  if (chunk === "VP8 ") {
    // RFC 6386 9.1: keyframe start code 9d 01 2a, then 14-bit width and height.
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) throw new HeaderError("VP8 start code missing");
    return { format: "webp", width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff, hasAlpha: false, animated: false, orientation: [], lossless: false };
  }
  throw new HeaderError(`unknown WebP chunk ${JSON.stringify(chunk)}`);
}

/** The body of the first RIFF chunk of `type` in a WebP file, if within the bytes at hand. */
function webpChunk(b: Uint8Array, type: string): Uint8Array | undefined {
  let i = 12;
  while (i + 8 <= b.length) {
    const len = b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24);
    if (len < 0) return undefined;
    if (ascii(b, i, 4) === type) return b.subarray(i + 8, Math.min(b.length, i + 8 + len));
    i += 8 + len + (len & 1);
  }
  return undefined;
}

/**
 * ANMF chunks (WebP container spec, "Animation"): each frame's size is at bytes 6-11 of its
 * payload (24-bit width-1, height-1).
 */
function webpAnimation(b: Uint8Array, width: number, height: number): { frames: number; pixels: number } {
  let frames = 0;
  let frameArea = 0;
  for (let i = 12; i + 8 <= b.length; ) {
    const len = u32le(b, i + 4);
    if (ascii(b, i, 4) === "ANMF" && i + 8 + 12 <= b.length) {
      frames++;
      frameArea += (u24le(b, i + 8 + 6) + 1) * (u24le(b, i + 8 + 9) + 1);
    }
    i += 8 + len + (len & 1);
  }
  return { frames, pixels: Math.max(width * height * frames, frameArea) };
}

function webpExifOrientation(b: Uint8Array): number[] {
  let body = webpChunk(b, "EXIF");
  if (!body) return [];
  // Some writers keep JPEG's "Exif\0\0" prefix in the chunk.
  if (ascii(body, 0, 6) === "Exif\u0000\u0000") body = body.subarray(6);
  return exifOrientation(body);
}

/** VP8X flags, animation bit (WebP container spec, "Extended file format"). */
function isAnimatedWebp(bytes: ArrayBuffer): boolean {
  const b = new Uint8Array(bytes, 0, Math.min(21, bytes.byteLength));
  return b.length >= 21 && String.fromCharCode(b[12], b[13], b[14], b[15]) === "VP8X" && (b[20] & 0x02) !== 0;
}

/**
 * Our libwebp build (codecs/webp), decoding straight to the scaled size: its initial memory,
 * the copy of the file, the scaled RGBA, and what the bitstream needs besides: a lossy (VP8)
 * decoder works by macroblock rows (about 64 bytes per source column), a lossless (VP8L) one
 * keeps the whole image at full size (4 bytes per pixel). 15% for growth steps.
 */
export function streamedWebpMemory(header: ImageHeader, sourceBytes: number, scaledWidth: number): number {
  const scaledHeight = Math.ceil((header.height * scaledWidth) / header.width);
  const work = header.lossless === false ? 64 * header.width : 4 * header.width * header.height;
  // 2e6: the memory's 2 MiB start (codecs/standalone), libwebp's own state inside it.
  return 1.15 * (2e6 + sourceBytes + 4 * scaledWidth * scaledHeight + work);
}

/**
 * libwebp codes a lossy WebP's alpha plane losslessly (VP8L, alpha_enc.c): an ARGB copy of the
 * plane, hash chains and backward references, all whole-image. Measured: a 4.2 MP alpha PNG to
 * full-size WebP peaked at 80.9 MB where the opaque model gives 8.8 MB, so 17 bytes a pixel.
 */
const ALPHA_BYTES_PER_PIXEL = 17;

/**
 * Outputs up to this many pixels (1920x1080) are encoded with libwebp's token buffer: one
 * analysis pass over the macroblocks instead of two (native/webpanim/glue.c), measured in Node
 * at q87 method 4: 800x533 in 52 instead of 86 ms, 1200x900 in 160 instead of 240 ms, with the
 * bytes of libwebp's default mode (the same file sharp writes). The buffer holds about 19 bytes
 * per output byte: 0.6 MiB for a 34 KB photo at 800w, but 31 MiB for 1080p of random noise
 * (0.78 bytes a pixel, the worst case seen), so it is budgeted at 16 bytes a pixel and kept to
 * web sizes; larger outputs keep the low-memory encoder.
 */
export const WEBP_TOKEN_PIXELS = 2_100_000;

/**
 * libwebp's sharp RGB to YUV conversion (cwebp -sharp_yuv), in the rows where colours meet.
 * Averaging each 2x2 block's colour, as the default conversion does, bleeds colour across
 * edges between saturated areas, which SSIMULACRA 2 penalises; elsewhere the sharp conversion
 * changes nothing but costs half the encode's time again. Measured in Node with our build at
 * method 4, bytes at the SSIMULACRA 2 of a mozjpeg q85 JPEG of the same pixels (geometric mean
 * over photos; averaging / sharp everywhere / sharp where colours meet): 8 Kodak photos 0.964x /
 * 0.960x / 0.962x, 5 Unsplash photos at 1200w 0.976x / 0.889x / 0.890x (one 0.76x), 9 others
 * 1.007x / 1.000x / 0.995x; encode time 1.57x everywhere, 1.25x where colours meet (224, 353
 * and 281 ms a megapixel over the 18 photos). Web sizes only (up to WEBP_TOKEN_PIXELS, which
 * covers every output the bytes were measured at): a larger output, such as a full-size WebP
 * of a 12 MP photo queued behind a request, would hold the memory gate seconds longer.
 */
export const WEBP_SHARP_YUV: SharpYuv = "edges";
const sharpFor = (pixels: number): SharpYuv => (pixels <= WEBP_TOKEN_PIXELS ? WEBP_SHARP_YUV : "off");
const TOKEN_BYTES_PER_PIXEL = 16;

/** Relative encode time by libwebp method 0..6 (4 = 1). */
const METHOD_FACTOR = [0.4, 0.5, 0.6, 0.8, 1, 1.3, 1.8];

/**
 * libwebp's YUV 4:2:0 picture (1.5 bytes a pixel, 2.5 with alpha, whose coding costs more:
 * ALPHA_BYTES_PER_PIXEL) and its low-memory encoder, whose partition writers start at
 * libwebp's guess of the output size (frame_enc.c PreLoopInitialize, up to 50 bytes a
 * macroblock at high quality): 42.0 MiB at 24 MP, 23.7 at 12 MP, so 0.33 bytes a pixel
 * besides the picture, plus 15% for growth steps; at web sizes the token buffer besides.
 */
const webpRowMemory = (pixels: number, alpha: boolean, width: number) =>
  1.15 * (2e6 + ((alpha ? 2.5 : 1.5) + 0.33) * pixels) + (alpha ? ALPHA_BYTES_PER_PIXEL * pixels : 0) + (pixels <= WEBP_TOKEN_PIXELS ? TOKEN_BYTES_PER_PIXEL * pixels : 0) + (sharpFor(pixels) === "off" ? 0 : SHARP_BYTES_PER_COLUMN * width);

/**
 * The sharp conversion's rows (native/webpanim/glue.c): a window of 64 RGBA rows, and for a
 * chunk of 32 rows with 8 of context either side, its ARGB and YUV copies and libsharpyuv's
 * work planes (sharpyuv.c: 16-bit luma and chroma, 7 bytes a pixel): about 860 bytes a column.
 */
const SHARP_BYTES_PER_COLUMN = 1024;
/** The widest a whole-image output is priced at without its width: a 4:1 panorama's. */
const widthOf = (pixels: number) => 2 * Math.sqrt(pixels);

export const webp: FormatSpec = {
  ...FORMAT_NAMES.webp,
  universal: false,
  rowScales: [8, 4, 2, 1],
  mime: "image/webp",
  mimeAliases: [],
  supportsAlpha: true,
  canDecode: true,
  sourceRank: 2,
  // RFC 9649 2.5: "RIFF", the file size, "WEBP".
  colourTag: webpColour,
  sniff: (b) => b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP",
  parseHeader: parseWebp,
  codecs: {
    // An animation's still is its first frame.
    rows: (bytes, denom, expect) => (isAnimatedWebp(bytes) ? firstFrame(openWebpAnimation(bytes)) : openWebp(bytes, denom, expect)),
    // Whole images go through the row encoder too: the same libwebp settings as WebPEncode's
    // defaults, so the same file byte for byte (12 photos at q87 method 4, against
    // @jsquash/webp's), in the job's shared memory instead of an instance of its own.
    encode: async (pixels, o, usage) =>
      encodeWhole(webpRowEncoder(pixels.width, pixels.height, 1, hasTransparency(pixels), o.quality, o.speed, pixels.width * pixels.height > WEBP_TOKEN_PIXELS, sharpFor(pixels.width * pixels.height)), pixels, usage),
    rowEncoder: {
      small: true,
      takes: () => true,
      open: (w, h, orientation, alpha, o) => webpRowEncoder(w, h, orientation, alpha, o.quality, o.speed, w * h > WEBP_TOKEN_PIXELS, sharpFor(w * h)),
    },
    frames: openWebpAnimation,
    animationEncoder: (w, h, loop, o) => webpAnimationEncoder(w, h, loop, o.quality, o.speed, o.lossless),
    animationAlpha: true,
    animationLossless: true,
  },
  cost: {
    decodeMsPerMp: 40,
    // 160 with the averaging conversion; the sharp one where colours meet (WEBP_SHARP_YUV, web
    // sizes) took 1.25x that over 18 photos, up to 1.57x on a photo with colour edges everywhere.
    encodeMsPerMp: 200,
    speedFactor: (speed) => METHOD_FACTOR[speed] ?? 1,
    // The whole image goes through the row encoder (codecs.encode).
    encodeMemory: (pixels, alpha) => webpRowMemory(pixels, alpha, widthOf(pixels)),
    streamedDecoder: (header, sourceBytes, scaledWidth) => ({ decoderBytes: streamedWebpMemory(header, sourceBytes, scaledWidth), bandBytes: 0 }),
    rowEncoderMemory: (pixels, longSide, alpha) => webpRowMemory(pixels, alpha, longSide),
    // WebPAnimDecoder: a copy of the file and two canvases; the frames come out composited.
    frameDecoder: (sourceBytes, canvasPixels) => ({ decoderBytes: 1.15 * (2e6 + sourceBytes + 8 * canvasPixels), canvasBytes: 0 }),
    /**
     * WebPAnimEncoder, measured (Node, q87 method 4, 320x240x24, 480x270x60, 800x600x50
     * identity): 36-45 bytes per output pixel (its previous canvases and candidate encodings)
     * plus the encoded frames so far (0.17-0.42 bytes per output pixel per frame), in growth
     * steps; 310-460 ms per megapixel of output frames at method 4.
     */
    animationEncodeMemory: (outputPixels, frames) => 1.2 * (2e6 + 48 * outputPixels + 0.5 * outputPixels * frames),
    animationEncodeMsPerMp: 460,
    instances: {
      rows: (animated) => (animated ? wasmModules.webpAnim : wasmModules.webp),
      encode: () => wasmModules.webpAnim,
      rowEncoder: wasmModules.webpAnim,
      frames: wasmModules.webpAnim,
      animationEncoder: wasmModules.webpAnim,
    },
  },
};
