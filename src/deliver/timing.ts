/**
 * @module deliver/timing
 * Collects per-stage durations and operation counts for Server-Timing, e.g.
 * `cache;dur=0.4;desc="1 op", r2;dur=2.1;desc="2 ops"` (every R2 call of the lookup chain goes
 * through `time("r2", ...)`, so a cache hit shows no `r2` entry at all). `wait` is time spent
 * waiting for memory in the admission gate or for another request producing the same variant.
 * Deployed Workers only
 * advance the clock at I/O (a Spectre mitigation), so CPU-only stages can read 0 there.
 */
import type { Timer } from "../produce/pipeline";

export class StageTimer implements Timer {
  readonly #totals = new Map<string, { ms: number; ops: number }>();

  async time<T>(stage: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.add(stage, performance.now() - start);
    }
  }

  add(stage: string, ms: number): void {
    const t = this.#totals.get(stage) ?? { ms: 0, ops: 0 };
    t.ms += ms;
    t.ops += 1;
    this.#totals.set(stage, t);
  }

  /** Stages in the order they first ran. */
  header(): string {
    return [...this.#totals].map(([k, v]) => `${k};dur=${v.ms.toFixed(1)};desc="${v.ops} op${v.ops === 1 ? "" : "s"}"`).join(", ");
  }
}
