/**
 * @module produce/budget
 * Predicts what a job will cost before any of it runs, because neither overrun can be caught:
 * an isolate over 128 MB is killed, and so is an invocation over its CPU limit.
 *
 * Memory is the whole job's high-water mark: the WASM memories alive at each step plus the JS
 * buffers held with them (source bytes, decoded RGBA, resampler state, output), the figure
 * X-Image-Peak-Memory reports. WASM coefficients are linear in pixels above the instance's
 * initial memory, measured in workerd with the per-job instances of `codecs` (sources of 1, 4,
 * 12 and 24 MP; `test/budget.test.ts` re-measures them and fails if a prediction is low).
 * CPU coefficients are milliseconds per megapixel on the reference machine (a 2-core x86 VM
 * running workerd), for real camera photos; encoders scale with their speed setting.
 */
import type { EncodeSettings } from "../config";
import type { FormatId } from "../formats";
import { JPEG_ROW_ENCODE_PIXELS } from "../codecs";
import { AVIF_TILE } from "../codecs/avif";
import type { ImageHeader, JpegLayout } from "../headers";
import { pngDecodeBytes } from "../codecs/png";

interface Linear {
  /** The instance's initial memory: small images never go below it. */
  floor: number;
  base: number;
  perPixel: number;
}

/**
 * Peak of the decoders that only give whole images (formats without `rowScales`): @jsquash's
 * AVIF decoder, measured (bytes, 1/4/12/24 MP) 24.2M/72.5M/191M/370.8M. Row decoders are
 * priced by `streamedDecoderMemory`.
 */
const DECODE_MEMORY: Partial<Record<FormatId, Linear>> = {
  avif: { floor: 25e6, base: 14e6, perPixel: 15.3 },
};

/**
 * Encoder instance peak by output format. Measured (bytes, 1/4/12/24 MP): JPEG 17.0M/66.8M/
 * 199.6M/398.7M, WebP 16.8M/46.3M/138.5M/276.8M, AVIF 42.3M/156.2M/433.5M/847.6M.
 */
const ENCODE_MEMORY: Record<FormatId, Linear> = {
  jpg: { floor: 17.5e6, base: 2e6, perPixel: 16.8 },
  webp: { floor: 17.5e6, base: 2e6, perPixel: 11.7 },
  avif: { floor: 43e6, base: 20e6, perPixel: 35.5 },
  png: { floor: 9e6, base: 2e6, perPixel: 7.2 },
  heic: { floor: Infinity, base: Infinity, perPixel: Infinity },
  gif: { floor: Infinity, base: Infinity, perPixel: Infinity },
};

const DECODE_MS_PER_MP: Record<FormatId, number> = { jpg: 30, webp: 40, avif: 100, png: 25, heic: 100, gif: 15 };
const RESIZE_MS_PER_SOURCE_MP = 25;
const STREAMED_ENTROPY_MS_PER_MP = 10;
/** At the reference speeds (AVIF cpu-used 8, WebP method 4). */
const ENCODE_MS_PER_MP: Record<FormatId, number> = { avif: 500, webp: 160, jpg: 250, png: 80, heic: Infinity, gif: Infinity };
/**
 * Relative encode time by libaom cpu-used 0..10 (8 = 1), measured with the @jsquash build
 * (issue 16): at q50 on Kodak 6 = 2.35, 5 = 12.2, 4 = 20. 5 is the background re-encode's speed,
 * so it is priced from the bench at the calibrated qualities instead: cpu-used 5 took 14-19x
 * cpu-used 8, which itself ran 1.6-2x ENCODE_MS_PER_MP at q80 (15 s per megapixel in all, = 30).
 * The slower ones are extrapolated.
 */
const AVIF_SPEED = [90, 70, 55, 40, 30, 30, 2.35, 1.6, 1, 0.8, 0.6];
/** Relative encode time by libwebp method 0..6 (4 = 1). */
const WEBP_METHOD = [0.4, 0.5, 0.6, 0.8, 1, 1.3, 1.8];

const linear = (l: Linear, pixels: number) => Math.max(l.floor, l.base + l.perPixel * pixels);

export interface JobShape {
  sourceFormat: FormatId;
  sourcePixels: number;
  /** Size of the compressed source: held in JS for the whole job, copied into a decoder. */
  sourceBytes: number;
  /** Codec memory this job already finished with but cannot free before V8 collects it (CodecSession.retiredBytes). */
  aliveBytes?: number;
  /**
   * A streamed decode (formats with `rowScales`): pixels it produces (after shrink-on-load),
   * its predicted WASM memory (`streamedDecoderMemory`) and the band of rows it assembles in JS.
   * Absent: the decoder gives the whole image at full size.
   */
  streamed?: { scaledPixels: number; decoderBytes: number; bandBytes: number };
  outputFormat: FormatId;
  outputPixels: number;
  settings: EncodeSettings;
  /** The pixels are already decoded and resized for this request: only the encode remains. */
  pixelsReady: boolean;
  /** An animation encoded frame by frame (see `predictAnimationCost`) instead of a still. */
  animation?: { frames: number; canvasPixels: number };
  /**
   * A large still written by a row encoder straight from the streamed decode (Production
   * `streamsOutput`): the output never whole. `longSide`: the output's longer side (an AVIF
   * grid holds a band of 512 rows of the stored width, which may be either side).
   */
  rowEncoded?: { longSide: number; alpha: boolean };
}

export interface Cost {
  /** Whole-job high-water mark: WASM memories (a finished one counts until the job ends) and JS buffers. */
  memoryBytes: number;
  cpuMs: number;
}

export function decodeMemory(format: FormatId, pixels: number): number {
  const model = DECODE_MEMORY[format];
  if (!model) throw new Error(`${format} is decoded by rows: price it with streamedDecoderMemory`);
  return linear(model, pixels);
}

/**
 * Our libjpeg-turbo build (codecs/jpeg): its initial memory, the copy of the file, the
 * coefficients of every component when the file has several scans (T.81 progressive: 2 bytes
 * each), and a few rows of the scaled width (libjpeg's own buffers and our band). The small
 * allocations grow memory in steps, so 15% is added to them; the coefficients are a few large
 * arrays (2% for MCU padding). Measured: 24 MP progressive 4:2:0 at 1/4 71.0 MiB and at 1/1
 * 70.9 MiB, 12 MP progressive at 1/2 37.9 MiB.
 */
export function streamedJpegMemory(sourcePixels: number, sourceBytes: number, scaledWidth: number, layout: JpegLayout): number {
  const coefficients = layout.multiScan ? 2 * layout.coefficientsPerPixel * sourcePixels : 0;
  return 1.02 * coefficients + 1.15 * (1.5e6 + sourceBytes + scaledWidth * 4 * 64);
}

/**
 * libheif-js decoding tile by tile: its 16.25 MiB initial memory holds the file and one tile's
 * work (HEVC picture, YCbCr and RGBA copies, about 8 bytes per tile pixel) for an iPhone grid
 * (measured: PUG1.HEIC never grew it); a single coded image is one big tile.
 */
export function streamedHeicMemory(sourceBytes: number, width: number, bandHeight: number): number {
  return Math.max(17.1e6, 1.15 * (4e6 + sourceBytes + 8 * width * bandHeight));
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
  return 1.15 * (1.5e6 + sourceBytes + 4 * scaledWidth * scaledHeight + work);
}

/** Predicted WASM memory of a row decoder for `header` at `scaledWidth`, and the band it assembles in JS. */
export function streamedDecoderMemory(header: ImageHeader, sourceBytes: number, scaledWidth: number): { decoderBytes: number; bandBytes: number } {
  // The first frame of a GIF (a still): giflib's memory and one frame's indices, the canvas and its copy.
  if (header.format === "gif") return { decoderBytes: 1.2e6 + header.width * header.height, bandBytes: 8 * header.width * header.height };
  if (header.format === "webp") return { decoderBytes: streamedWebpMemory(header, sourceBytes, scaledWidth), bandBytes: 0 };
  if (header.format === "png") return { decoderBytes: 0, bandBytes: pngDecodeBytes(header.width, header.height, !!header.interlaced) };
  if (header.jpeg) return { decoderBytes: streamedJpegMemory(header.width * header.height, sourceBytes, scaledWidth, header.jpeg), bandBytes: 0 };
  const band = header.bandHeight ?? header.height;
  return { decoderBytes: streamedHeicMemory(sourceBytes, header.width, band), bandBytes: 4 * header.width * band };
}

/** What the streaming resampler holds besides its output: a ring of float rows and kernels. */
const resamplerState = (outputPixels: number) => 1e6 + 0.1 * outputPixels;

/**
 * Animated WebP from a GIF or an animated WebP, frame by frame (produce/pipeline). Memory: the
 * source bytes; the frame decoder (giflib: 1 MiB and one frame's indices; WebPAnimDecoder: a
 * copy of the file and two canvases); the JS canvas, the copy under a disposal-3 frame and one
 * resampled frame; WebPAnimEncoder, measured (Node, q87 method 4, 320x240x24, 480x270x60,
 * 800x600x50 identity): 36-45 bytes per output pixel (its previous canvases and candidate
 * encodings) plus the encoded frames so far (0.17-0.42 bytes per output pixel per frame), in
 * growth steps. CPU: the frame loop composites every canvas pixel in JS and resamples it, and
 * the encoder took 310-460 ms per megapixel of output frames at method 4.
 */
const ANIMATION_ENCODE_MS_PER_MP = 460;
const ANIMATION_COMPOSITE_MS_PER_MP = 15;

function predictAnimationCost(job: JobShape, animation: { frames: number; canvasPixels: number }): Cost {
  const { frames, canvasPixels } = animation;
  const out = 4 * job.outputPixels;
  const decoderBytes = job.sourceFormat === "webp" ? 1.15 * (1.5e6 + job.sourceBytes + 8 * canvasPixels) : 1.2e6 + canvasPixels;
  const canvasJs = job.sourceFormat === "webp" ? 0 : 8 * canvasPixels;
  const encoderBytes = 1.2 * (1.5e6 + 48 * job.outputPixels + 0.5 * job.outputPixels * frames);
  const memoryBytes = (job.aliveBytes ?? 0) + job.sourceBytes + decoderBytes + canvasJs + 2 * out + resamplerState(job.outputPixels) + encoderBytes;
  const resized = job.outputPixels !== canvasPixels;
  const prepareMs = (frames * canvasPixels * (ANIMATION_COMPOSITE_MS_PER_MP + (resized ? RESIZE_MS_PER_SOURCE_MP : 0))) / 1e6;
  const encodeMs = (frames * job.outputPixels * ANIMATION_ENCODE_MS_PER_MP * (WEBP_METHOD[job.settings.speed] ?? 1)) / 1e6;
  return { memoryBytes, cpuMs: prepareMs + encodeMs };
}

/**
 * Row encoders (codecs ROW_ENCODERS), measured in workerd (X-Image-Peak-Memory parts):
 * - JPEG by rows (libjpeg-turbo): its buffers and the growing file (8.7 MiB at 12 MP).
 * - WebP: libwebp's YUV 4:2:0 picture (1.5 bytes a pixel, 2.5 with alpha, whose coding costs
 *   more: WEBP_ALPHA_BYTES_PER_PIXEL) and its low-memory encoder, whose partition writers start at libwebp's guess of the output size (frame_enc.c
 *   PreLoopInitialize, up to 50 bytes a macroblock at high quality): 42.0 MiB at 24 MP, 23.7 at
 *   12 MP, so 0.33 bytes a pixel besides the picture, plus 15% for growth steps.
 * - AVIF grid: one @jsquash/avif instance coding tiles of at most 512x512 (16 MiB whatever the image), a
 *   band of 512 stored rows and one tile of RGBA, and the coded tiles (0.15 bytes a pixel at
 *   q80 for a 12 MP photo; 0.2 priced).
 */
/**
 * libwebp codes a lossy WebP's alpha plane losslessly (VP8L, alpha_enc.c): an ARGB copy of the
 * plane, hash chains and backward references, all whole-image. Measured: a 4.2 MP alpha PNG to
 * full-size WebP peaked at 80.9 MB where the opaque model gives 8.8 MB, so 17 bytes a pixel.
 */
const WEBP_ALPHA_BYTES_PER_PIXEL = 17;

function rowEncoderMemory(format: FormatId, pixels: number, longSide: number, alpha: boolean): number {
  if (format === "jpg") return 4e6 + 0.5 * pixels;
  if (format === "webp") return 1.15 * (1.5e6 + ((alpha ? 2.5 : 1.5) + 0.33) * pixels) + (alpha ? WEBP_ALPHA_BYTES_PER_PIXEL * pixels : 0);
  if (format === "avif") return 17e6 + 4 * longSide * AVIF_TILE + 4 * AVIF_TILE * AVIF_TILE + 0.2 * pixels;
  throw new Error(`no row encoder for ${format}`);
}

/**
 * AVIF as a grid of tiles of at most 512x512 codes slower per pixel than one picture (each tile restarts
 * libaom's analysis): 12 MP took 9.0 s in Node and 10.8 s in workerd (decode included) at q80
 * speed 8, so 900 ms per megapixel at the reference speed.
 */
const AVIF_GRID_MS_PER_MP = 900;

/** A large still from a streamed decode straight into a row encoder: decoder, bands and encoder alive together. */
function predictRowEncodedCost(job: JobShape, rows: { longSide: number; alpha: boolean }): Cost {
  const streamed = job.streamed!;
  const memoryBytes =
    (job.aliveBytes ?? 0) +
    job.sourceBytes +
    streamed.decoderBytes +
    streamed.bandBytes +
    // The resampler's ring of float rows (at most 14 of them below a 2x shrink) and one band of output.
    1e6 + 256 * rows.longSide +
    rowEncoderMemory(job.outputFormat, job.outputPixels, rows.longSide, rows.alpha);
  const perMp = job.outputFormat === "avif" ? AVIF_GRID_MS_PER_MP : ENCODE_MS_PER_MP[job.outputFormat];
  const encodeMs = (perMp * speedFactor(job) * job.outputPixels) / 1e6;
  return { memoryBytes, cpuMs: prepareMs(job) + encodeMs };
}

const speedFactor = (job: JobShape) =>
  job.outputFormat === "avif" ? AVIF_SPEED[job.settings.speed] ?? 1 : job.outputFormat === "webp" ? WEBP_METHOD[job.settings.speed] ?? 1 : 1;

/**
 * Decode and resize: a scaled JPEG decode pays entropy decoding for every source pixel, and the
 * inverse DCT, colour conversion and resize only for the pixels it produces (measured: 24 MP
 * progressive at 1/4 in 223 ms, 12 MP at 1/1 in 329 ms). Unscaled decoders pay per source pixel.
 */
function prepareMs(job: JobShape): number {
  if (job.pixelsReady) return 0;
  const scaled = job.streamed && job.streamed.scaledPixels < job.sourcePixels;
  return scaled
    ? (STREAMED_ENTROPY_MS_PER_MP * job.sourcePixels + (DECODE_MS_PER_MP[job.sourceFormat] + RESIZE_MS_PER_SOURCE_MP) * job.streamed!.scaledPixels) / 1e6
    : ((DECODE_MS_PER_MP[job.sourceFormat] + RESIZE_MS_PER_SOURCE_MP) * job.sourcePixels) / 1e6;
}

export function predictCost(job: JobShape): Cost {
  if (job.animation) return predictAnimationCost(job, job.animation);
  if (job.rowEncoded && job.streamed && !job.pixelsReady) return predictRowEncodedCost(job, job.rowEncoded);
  const out = 4 * job.outputPixels;
  let decodeWasm = 0;
  let decodeJs = 0;
  if (!job.pixelsReady) {
    if (job.streamed) {
      // Rows flow from the decoder into the resampler: the full-size image never exists.
      decodeWasm = job.streamed.decoderBytes;
      decodeJs = job.streamed.bandBytes + out + resamplerState(job.outputPixels);
    } else {
      // A whole-image decoder: its memory, its RGBA copy, then the resampler's output beside it.
      decodeWasm = decodeMemory(job.sourceFormat, job.sourcePixels);
      decodeJs = 4 * job.sourcePixels + out + resamplerState(job.outputPixels);
    }
  }
  // The encoder runs while the decoder's memory is still alive (see CodecSession.retiredBytes),
  // reading the output RGBA and writing the file.
  const encodeWasm =
    job.outputFormat === "jpg" && job.outputPixels > JPEG_ROW_ENCODE_PIXELS
      ? // libjpeg-turbo by rows: its buffers and the growing file (measured 8.7 MiB at 12 MP).
        4e6 + 0.5 * job.outputPixels
      : linear(ENCODE_MEMORY[job.outputFormat], job.outputPixels);
  const encodeJs = out + job.outputPixels;
  const alive = (job.aliveBytes ?? 0) + job.sourceBytes;
  const memoryBytes = alive + Math.max(decodeWasm + decodeJs, decodeWasm + encodeWasm + encodeJs);
  const encodeMs = (ENCODE_MS_PER_MP[job.outputFormat] * speedFactor(job) * job.outputPixels) / 1e6;
  return { memoryBytes, cpuMs: prepareMs(job) + encodeMs };
}
