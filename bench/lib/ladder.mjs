// The worker's default qualities for the bench scripts: the calibrated ladder's rung at the
// default QUALITY_LEVEL (src/produce/quality-ladder.json, the data the worker itself imports, so
// a script cannot drift from what the worker uses), and the re-encode's default speed
// (src/config.ts REENCODE_SPEED).
import { readFileSync } from "node:fs";

export const DEFAULT_LEVEL = 85;
export const REENCODE_SPEED = 5;

export function ladderRung(level = DEFAULT_LEVEL) {
  const { ladder } = JSON.parse(readFileSync(new URL("../../src/produce/quality-ladder.json", import.meta.url), "utf8"));
  const rung = ladder[level];
  if (!rung) throw new Error(`no rung ${level} in src/produce/quality-ladder.json`);
  return rung;
}
