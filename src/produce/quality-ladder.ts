/**
 * @module produce/quality-ladder
 * The calibrated qualities: per quality level (a mozjpeg JPEG quality, the reference), each
 * encoder's quality that matches it on Kodak and Unsplash (bench/results/calibration.md; JPEG by
 * SSIMULACRA 2, the others by both SSIM and butteraugli). The numbers live in
 * quality-ladder.json, written by `node bench/calibrate.mjs --derive` and read as data by the
 * bench scripts too (bench/lib/ladder.mjs); re-run the calibration when an encoder changes.
 */
import data from "./quality-ladder.json";

export type QualityLevel = 75 | 80 | 85 | 90;
export interface Rung {
  jpg: number;
  avifFast: number;
  avifSlow: number;
  webp: number;
}

export const QUALITY_LEVELS = data.levels as readonly QualityLevel[];
export const QUALITY_LADDER = data.ladder as unknown as Record<QualityLevel, Rung>;
