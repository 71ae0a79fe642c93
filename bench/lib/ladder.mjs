// The worker's default qualities for the bench scripts: the calibrated ladder's rung at the
// default QUALITY_LEVEL (src/produce/quality-ladder.ts, read as text so a script cannot drift
// from what the worker uses), and the re-encode's default speed (src/config.ts REENCODE_SPEED).
import { readFileSync } from "node:fs";

export const DEFAULT_LEVEL = 85;
export const REENCODE_SPEED = 5;

export function ladderRung(level = DEFAULT_LEVEL) {
  const text = readFileSync(new URL("../../src/produce/quality-ladder.ts", import.meta.url), "utf8");
  const m = new RegExp(`\\b${level}: \\{ jpg: (\\d+), avifFast: (\\d+), avifSlow: (\\d+), webp: (\\d+) \\}`).exec(text);
  if (!m) throw new Error(`no rung ${level} in src/produce/quality-ladder.ts`);
  return { jpg: Number(m[1]), avifFast: Number(m[2]), avifSlow: Number(m[3]), webp: Number(m[4]) };
}
