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
import { formatSpec, type FormatId } from "../formats";
import type { ImageHeader } from "../headers";
import type { SequenceShape } from "../formats/probe";
import { wasmModules } from "../../wasm/modules";
import type { Part } from "./admission";
import { MAX_TRIALS, samplePixels, SEARCH_MIN_PIXELS, searchesQuality } from "./perceptual";

// The per-format models live in the format modules; these are re-exported for the tests.
export { streamedHeicMemory } from "../formats/heic";
export { streamedJpegMemory } from "../formats/jpeg";
export { streamedWebpMemory } from "../formats/webp";

const RESIZE_MS_PER_SOURCE_MP = 25;
const STREAMED_ENTROPY_MS_PER_MP = 10;

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
  /** The source has an alpha channel and the output format keeps it (absent: opaque). */
  outputAlpha?: boolean;
  settings: EncodeSettings;
  /** The pixels are already decoded and resized for this request: only the encode remains. */
  pixelsReady: boolean;
  /** The source is an image sequence of this shape (formats price their decoders by it). */
  sourceSequence?: SequenceShape;
  /** Decode CPU the source's own structure adds (formats' `cost.structureMs`: a JPEG's many scans). */
  structureMs?: number;
  /**
   * An animation encoded frame by frame (see `predictAnimationCost`) instead of a still;
   * `alpha`: its canvases may show transparency (the encoder keeps it).
   */
  animation?: AnimationShape;
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
  /**
   * The resident codec instances inside `memoryBytes` (codecs/resident), each with its
   * predicted size: the memory gate lends idle ones of those modules to the job.
   */
  parts: Part[];
}

/** A priced codec's part, when its module's instances are resident (formats' `cost.instances`). */
function part(module: WebAssembly.Module | undefined, bytes: number): Part[] {
  return module && Number.isFinite(bytes) ? [{ module, bytes }] : [];
}

/** Peak of a whole-image decoder (formats without a row decoder). */
export function decodeMemory(format: FormatId, pixels: number, sequence?: SequenceShape): number {
  const model = formatSpec(format).cost.decodeMemory;
  if (!model) throw new Error(`${format} is decoded by rows: price it with streamedDecoderMemory`);
  return model(pixels, sequence);
}

/** Predicted WASM memory of a row decoder for `header` at `scaledWidth`, and the band it assembles in JS. */
export function streamedDecoderMemory(header: ImageHeader, sourceBytes: number, scaledWidth: number): { decoderBytes: number; bandBytes: number } {
  const model = formatSpec(header.format).cost.streamedDecoder;
  if (!model) throw new Error(`${header.format} has no row decoder`);
  return model(header, sourceBytes, scaledWidth);
}

/** What the streaming resampler holds besides its output: a ring of float rows and kernels. */
const resamplerState = (outputPixels: number) => 1e6 + 0.1 * outputPixels;

/**
 * An animation encoded frame by frame (produce/pipeline). Memory: the source bytes; the frame
 * decoder and the canvases it keeps (the source format's `frameDecoder`); one resampled frame
 * and its copy; the animation encoder (the output format's `animationEncodeMemory`). CPU: the
 * frame loop composites every canvas pixel in JS and resamples it, then the encoder.
 */
const ANIMATION_COMPOSITE_MS_PER_MP = 15;

/** The source sequence's shape (priced by its decoder) and the animation's own. */
export type AnimationShape = { frames: number; canvasPixels: number; alpha?: boolean } & SequenceShape;

function predictAnimationCost(job: JobShape, animation: AnimationShape): Cost {
  const { frames, canvasPixels } = animation;
  const source = formatSpec(job.sourceFormat).cost;
  const output = formatSpec(job.outputFormat).cost;
  if (!source.frameDecoder || !output.animationEncodeMemory || !output.animationEncodeMsPerMp) throw new Error(`no animation from ${job.sourceFormat} to ${job.outputFormat}`);
  const out = 4 * job.outputPixels;
  const { decoderBytes, canvasBytes } = source.frameDecoder(job.sourceBytes, canvasPixels, animation);
  const encoderBytes = output.animationEncodeMemory(job.outputPixels, frames, animation.alpha ?? false);
  const memoryBytes = (job.aliveBytes ?? 0) + job.sourceBytes + decoderBytes + canvasBytes + 2 * out + resamplerState(job.outputPixels) + encoderBytes;
  const resized = job.outputPixels !== canvasPixels;
  const prepareMs = (frames * canvasPixels * ((source.frameDecodeMsPerMp ?? ANIMATION_COMPOSITE_MS_PER_MP) + (resized ? RESIZE_MS_PER_SOURCE_MP : 0))) / 1e6;
  const encodeMs = (frames * job.outputPixels * output.animationEncodeMsPerMp * (animation.alpha ? (output.animationAlphaCpuFactor ?? 1) : 1) * speedFactor(job)) / 1e6;
  const parts = [
    ...part(source.instances?.frames, decoderBytes),
    ...part(output.instances?.animationEncoder, encoderBytes),
    ...(resized ? part(wasmModules.resize, resamplerState(job.outputPixels)) : []),
  ];
  return { memoryBytes, cpuMs: prepareMs + encodeMs, parts };
}

/** A large still from a streamed decode straight into a row encoder: decoder, bands and encoder alive together. */
function predictRowEncodedCost(job: JobShape, rows: { longSide: number; alpha: boolean }): Cost {
  const streamed = job.streamed!;
  const output = formatSpec(job.outputFormat).cost;
  if (!output.rowEncoderMemory) throw new Error(`no row encoder for ${job.outputFormat}`);
  const memoryBytes =
    (job.aliveBytes ?? 0) +
    job.sourceBytes +
    streamed.decoderBytes +
    streamed.bandBytes +
    // The resampler's ring of float rows (at most 14 of them below a 2x shrink) and one band of output.
    1e6 + 256 * rows.longSide +
    output.rowEncoderMemory(job.outputPixels, rows.longSide, rows.alpha, job.settings.speed);
  const perMp = output.rowEncodeMsPerMp ?? output.encodeMsPerMp;
  const encodeMs = (perMp * speedFactor(job) * job.outputPixels) / 1e6;
  const parts = [
    ...part(formatSpec(job.sourceFormat).cost.instances?.rows?.(job.sourceSequence !== undefined), streamed.decoderBytes),
    ...part(output.instances?.rowEncoder, output.rowEncoderMemory(job.outputPixels, rows.longSide, rows.alpha, job.settings.speed)),
    ...part(wasmModules.resize, 1e6),
  ];
  return { memoryBytes, cpuMs: prepareMs(job) + encodeMs, parts };
}

/** The output format's encode time at this job's speed, relative to its reference speed. */
const speedFactor = (job: JobShape) => formatSpec(job.outputFormat).cost.speedFactor?.(job.settings.speed) ?? 1;

/**
 * Decode and resize: a scaled JPEG decode pays entropy decoding for every source pixel, and the
 * inverse DCT, colour conversion and resize only for the pixels it produces (measured: 24 MP
 * progressive at 1/4 in 223 ms, 12 MP at 1/1 in 329 ms). Unscaled decoders pay per source pixel.
 */
function prepareMs(job: JobShape): number {
  if (job.pixelsReady) return 0;
  return (job.structureMs ?? 0) + decodeAndResizeMs(job);
}

function decodeAndResizeMs(job: JobShape): number {
  const scaled = job.streamed && job.streamed.scaledPixels < job.sourcePixels;
  const decodeMsPerMp = formatSpec(job.sourceFormat).cost.decodeMsPerMp;
  return scaled
    ? (STREAMED_ENTROPY_MS_PER_MP * job.sourcePixels + (decodeMsPerMp + RESIZE_MS_PER_SOURCE_MP) * job.streamed!.scaledPixels) / 1e6
    : ((decodeMsPerMp + RESIZE_MS_PER_SOURCE_MP) * job.sourcePixels) / 1e6;
}

/** SSIMULACRA 2's memory (codecs/ssim2: 155 bytes a pixel, measured, plus the two inputs) and time (about 500 ms a megapixel). */
const ssim2Memory = (pixels: number) => 2e6 + 165 * pixels;
const SSIM2_MS_PER_MP = 500;

/**
 * Per-image quality (produce/perceptual), when the job's settings ask for it: on a sample of
 * the output, the reference JPEG encoded, decoded and scored, then up to three trials of the
 * output format, each encoded, decoded and scored, one after another in one memory.
 */
function searchCost(job: JobShape): { memoryBytes: number; jsBytes: number; cpuMs: number } {
  if (job.settings.target === undefined || job.outputAlpha || job.outputPixels < SEARCH_MIN_PIXELS || !searchesQuality(job.outputFormat)) return { memoryBytes: 0, jsBytes: 0, cpuMs: 0 };
  const sample = samplePixels(job.outputPixels);
  const output = formatSpec(job.outputFormat).cost;
  const jpeg = formatSpec("jpg").cost;
  const trialMs = output.encodeMsPerMp * speedFactor(job) + output.decodeMsPerMp + SSIM2_MS_PER_MP;
  const referenceMs = jpeg.encodeMsPerMp + jpeg.decodeMsPerMp + SSIM2_MS_PER_MP;
  return {
    memoryBytes: Math.max(ssim2Memory(sample), output.encodeMemory(sample, false, job.settings.speed)),
    // The sample and up to three decoded copies of it.
    jsBytes: 16 * sample,
    cpuMs: ((MAX_TRIALS * trialMs + referenceMs) * sample) / 1e6,
  };
}

export function predictCost(job: JobShape): Cost {
  if (job.animation) return predictAnimationCost(job, job.animation);
  if (job.rowEncoded && job.streamed && !job.pixelsReady) return predictRowEncodedCost(job, job.rowEncoded);
  const out = 4 * job.outputPixels;
  let decodeWasm = 0;
  let decodeJs = 0;
  const parts: Part[] = [];
  const source = formatSpec(job.sourceFormat).cost.instances;
  if (!job.pixelsReady) {
    if (job.streamed) {
      // Rows flow from the decoder into the resampler: the full-size image never exists.
      decodeWasm = job.streamed.decoderBytes;
      decodeJs = job.streamed.bandBytes + out + resamplerState(job.outputPixels);
      parts.push(...part(source?.rows?.(job.sourceSequence !== undefined), decodeWasm));
    } else {
      // A whole-image decoder: its memory, its RGBA copy, then the resampler's output beside it.
      decodeWasm = decodeMemory(job.sourceFormat, job.sourcePixels, job.sourceSequence);
      decodeJs = 4 * job.sourcePixels + out + resamplerState(job.outputPixels);
      parts.push(...part(source?.decode?.(job.sourceSequence !== undefined), decodeWasm));
    }
    parts.push(...part(wasmModules.resize, resamplerState(job.outputPixels)));
  }
  // The encoder runs while the decoder's memory is still alive (see CodecSession.retiredBytes),
  // reading the output RGBA and writing the file.
  const output = formatSpec(job.outputFormat).cost;
  // Per-image quality's trials run before the encode, in the memory the encoder then reuses.
  const search = searchCost(job);
  const encodeWasm = Math.max(output.encodeMemory(job.outputPixels, job.outputAlpha ?? false, job.settings.speed), search.memoryBytes);
  const encodeJs = out + job.outputPixels + search.jsBytes;
  const alive = (job.aliveBytes ?? 0) + job.sourceBytes;
  const memoryBytes = alive + Math.max(decodeWasm + decodeJs, decodeWasm + encodeWasm + encodeJs);
  const encodeMs = (output.encodeMsPerMp * speedFactor(job) * job.outputPixels) / 1e6 + search.cpuMs;
  parts.push(...part(output.instances?.encode?.(job.outputPixels), encodeWasm));
  return { memoryBytes, cpuMs: prepareMs(job) + encodeMs, parts };
}
