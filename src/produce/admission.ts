/**
 * @module produce/admission
 * Isolate-wide memory admission. Cloudflare gives an isolate 128 MB, WASM memories included,
 * shared by every request it runs at once; one job over it kills them all. Each production
 * declares its predicted whole-job memory (produce/budget) before it runs; the gate admits jobs
 * while the sum stays under MEMORY_BUDGET_MB, and queues the rest in FIFO order for at most
 * ADMISSION_WAIT_MS.
 *
 * A finished job's memory is not free at once: its dropped WASM instances are returned only
 * when V8 collects them (measured 1.5-5 s later), and a Worker cannot force a collection. So a
 * released reservation keeps counting for MEMORY_RELEASE_MS, then is forgotten.
 */

export class AdmissionTimeout extends Error {
  override name = "AdmissionTimeout";
}

interface Waiter {
  bytes: number;
  wake: () => void;
}

export class MemoryGate {
  #active = 0;
  /** Released reservations still counted until `until` (ms since epoch). */
  #garbage: { bytes: number; until: number }[] = [];
  #waiters: Waiter[] = [];
  #peak = 0;

  /** The most this gate ever counted at once (admitted plus garbage), for tests and the bench. */
  get peakUsedBytes(): number {
    return this.#peak;
  }

  constructor(
    readonly capacityBytes: number,
    readonly releaseDelayMs: number,
  ) {}

  /** Bytes counted now: admitted jobs plus recent garbage. */
  get usedBytes(): number {
    const now = Date.now();
    this.#garbage = this.#garbage.filter((g) => g.until > now);
    return this.#active + this.#garbage.reduce((sum, g) => sum + g.bytes, 0);
  }

  /** A reservation for one job, grown as its steps need and released once. */
  ticket(): Ticket {
    return new Ticket(this);
  }

  /** @internal Waits until `bytes` more fit, first come first served, or throws after `waitMs`. */
  async admit(bytes: number, waitMs: number): Promise<void> {
    if (bytes > this.capacityBytes) throw new AdmissionTimeout(`a job of ${(bytes / 2 ** 20).toFixed(0)} MiB can never fit ${(this.capacityBytes / 2 ** 20).toFixed(0)} MiB`);
    const deadline = Date.now() + waitMs;
    const me: Waiter = { bytes, wake: () => {} };
    this.#waiters.push(me);
    try {
      // FIFO: only the first waiter may take capacity; the others wait behind it.
      while (this.#waiters[0] !== me || this.usedBytes + bytes > this.capacityBytes) {
        const left = deadline - Date.now();
        if (left <= 0) throw new AdmissionTimeout(`no room for ${(bytes / 2 ** 20).toFixed(0)} MiB within ${waitMs} ms`);
        // Woken by a release, or when the oldest garbage expires (timers keep this request alive).
        const nextExpiry = Math.min(...this.#garbage.map((g) => g.until), Infinity) - Date.now();
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(5, Math.min(left, nextExpiry, 250)));
          me.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      this.#active += bytes;
      this.#peak = Math.max(this.#peak, this.usedBytes);
    } finally {
      this.#waiters.splice(this.#waiters.indexOf(me), 1);
      this.#waiters[0]?.wake();
    }
  }

  /** @internal Ends `bytes` of admitted work: counted as garbage for `releaseDelayMs`. */
  release(bytes: number): void {
    this.#active -= bytes;
    if (this.releaseDelayMs > 0) this.#garbage.push({ bytes, until: Date.now() + this.releaseDelayMs });
    this.#waiters[0]?.wake();
  }
}

export class Ticket {
  #held = 0;
  #released = false;
  constructor(private readonly gate: MemoryGate) {}

  /** Grows this job's reservation to `bytes` in all (its whole-job prediction so far). */
  async ensure(bytes: number, waitMs: number): Promise<void> {
    if (this.#released || bytes <= this.#held) return;
    await this.gate.admit(bytes - this.#held, waitMs);
    this.#held = bytes;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#held > 0) this.gate.release(this.#held);
  }
}

let shared: MemoryGate | undefined;

/** The isolate's gate (module state is per isolate), sized from the first config that asks. */
export function isolateGate(capacityBytes: number, releaseDelayMs: number): MemoryGate {
  if (!shared || shared.capacityBytes !== capacityBytes || shared.releaseDelayMs !== releaseDelayMs) shared = new MemoryGate(capacityBytes, releaseDelayMs);
  return shared;
}
