/**
 * @module deliver/timing
 * Collects per-stage durations for Server-Timing. Note that deployed Workers only advance the
 * clock at I/O (a Spectre mitigation), so CPU-only stages can read 0 there; local workerd shows
 * real figures.
 */
import type { Timer } from "../produce/pipeline";

export class StageTimer implements Timer {
  readonly #totals = new Map<string, number>();

  async time<T>(stage: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.#totals.set(stage, (this.#totals.get(stage) ?? 0) + performance.now() - start);
    }
  }

  /** `cache;dur=0.4, r2;dur=2.1`: stages in the order they first ran. */
  header(): string {
    return [...this.#totals].map(([k, v]) => `${k};dur=${v.toFixed(1)}`).join(", ");
  }
}
