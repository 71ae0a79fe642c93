/**
 * @module produce/budget
 * Predicts what a job will cost before any of it runs, because neither overrun can be caught:
 * an isolate over 128 MB is killed, and so is an invocation over its CPU limit.
 *
 * Memory is the WASM high-water mark, linear in pixels above the instance's initial memory.
 * Coefficients were measured in workerd with the per-job instances of `codecs` (sources of 1,
 * 4, 12 and 24 MP; `test/budget.test.ts` re-measures them and fails if a prediction is low).
 * CPU coefficients are milliseconds per megapixel on the reference machine (a 2-core x86 VM
 * running workerd), for real camera photos; encoders scale with their speed setting.
 */
import type { EncodeSettings } from "../config";
import type { FormatId } from "../formats";

interface Linear {
  /** The instance's initial memory: small images never go below it. */
  floor: number;
  base: number;
  perPixel: number;
}

/**
 * Decoder instance peak by source format. Measured (bytes, 1/4/12/24 MP): JPEG 16.9M/32.4M/
 * 96.4M/192.8M, WebP 16.8M/16.8M/57.9M/115.6M, AVIF 24.2M/72.5M/191M/370.8M, PNG 8.5M/24.6M/
 * 72.6M/168.7M; HEIC (libheif) 17.0M at 1.1 MP, 73.8M for the 12.2 MP iPhone grid.
 */
const DECODE_MEMORY: Record<FormatId, Linear> = {
  jpg: { floor: 17.5e6, base: 1e6, perPixel: 8.2 },
  webp: { floor: 17.5e6, base: 1e6, perPixel: 5.0 },
  avif: { floor: 25e6, base: 14e6, perPixel: 15.3 },
  png: { floor: 9e6, base: 2e6, perPixel: 7.2 },
  heic: { floor: 17.5e6, base: 2e6, perPixel: 6.4 },
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
};

const DECODE_MS_PER_MP: Record<FormatId, number> = { jpg: 30, webp: 40, avif: 100, png: 25, heic: 100 };
const RESIZE_MS_PER_SOURCE_MP = 25;
/** At the reference speeds (AVIF cpu-used 8, WebP method 4). */
const ENCODE_MS_PER_MP: Record<FormatId, number> = { avif: 500, webp: 160, jpg: 250, png: 80, heic: Infinity };
/** Relative encode time by libaom cpu-used 0..10 (8 = 1). */
const AVIF_SPEED = [40, 28, 18, 12, 8, 5, 2.6, 1.6, 1, 0.8, 0.6];
/** Relative encode time by libwebp method 0..6 (4 = 1). */
const WEBP_METHOD = [0.4, 0.5, 0.6, 0.8, 1, 1.3, 1.8];

const linear = (l: Linear, pixels: number) => Math.max(l.floor, l.base + l.perPixel * pixels);

export interface JobShape {
  sourceFormat: FormatId;
  sourcePixels: number;
  outputFormat: FormatId;
  outputPixels: number;
  settings: EncodeSettings;
  /** The pixels are already decoded and resized for this request: only the encode remains. */
  pixelsReady: boolean;
}

export interface Cost {
  /** WASM high-water mark of the job: decoder and encoder never live at the same time. */
  memoryBytes: number;
  cpuMs: number;
}

export function decodeMemory(format: FormatId, pixels: number): number {
  return linear(DECODE_MEMORY[format], pixels);
}

export function predictCost(job: JobShape): Cost {
  const encodeMemory = linear(ENCODE_MEMORY[job.outputFormat], job.outputPixels);
  const speedFactor =
    job.outputFormat === "avif" ? AVIF_SPEED[job.settings.speed] ?? 1 : job.outputFormat === "webp" ? WEBP_METHOD[job.settings.speed] ?? 1 : 1;
  const encodeMs = (ENCODE_MS_PER_MP[job.outputFormat] * speedFactor * job.outputPixels) / 1e6;
  const prepareMs = job.pixelsReady
    ? 0
    : ((DECODE_MS_PER_MP[job.sourceFormat] + RESIZE_MS_PER_SOURCE_MP) * job.sourcePixels) / 1e6;
  return {
    memoryBytes: Math.max(job.pixelsReady ? 0 : decodeMemory(job.sourceFormat, job.sourcePixels), encodeMemory),
    cpuMs: prepareMs + encodeMs,
  };
}
