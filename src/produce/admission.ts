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
 *
 * Requests come before background jobs (the queue consumer's deferred variants and async jobs,
 * which share the isolate): a waiting request is admitted ahead of every waiting job, whatever
 * their arrival order, so a burst that deferred work does not make its own followers wait
 * behind that work. A job already running is never interrupted.
 *
 * Idle codec instances kept between jobs (codecs/pool) count as used; when a job does not fit,
 * the pool is drained first, and what it held counts as garbage like a released job's memory.
 *
 * Two rules of the Workers runtime shape this code. A request must not wait on something only
 * another request can settle (the runtime cancels it as hung when its own I/O is done), so
 * waiters poll with their own timers instead of being woken. And a request the runtime cancels
 * never runs its `finally`, so every reservation is a lease that lapses after MAX_JOB_MS.
 */

import { drainPool, pooledBytes } from "../codecs/pool";

export class AdmissionTimeout extends Error {
  override name = "AdmissionTimeout";
}

/** Longest a job can hold memory: the platform's largest CPU limit (300 s) is far above any job here. */
const MAX_JOB_MS = 120_000;
/** How often a waiting job looks again. */
const POLL_MS = 20;

interface Lease {
  bytes: number;
  /** Counted until then (ms since epoch): the lease's end, or its release plus the release delay. */
  until: number;
}

export class MemoryGate {
  #leases = new Set<Lease>();
  /** Waiters, requests first and each kind in arrival order; only the first may take capacity. */
  #queue: { background: boolean }[] = [];
  #peak = 0;

  constructor(
    readonly capacityBytes: number,
    readonly releaseDelayMs: number,
    /** Idle codec instances living in the isolate beside the jobs (codecs/pool). */
    private readonly pool?: { bytes(): number; drain(): number },
  ) {}

  /** Bytes counted now: admitted jobs, recent garbage and idle pooled instances. */
  get usedBytes(): number {
    const now = Date.now();
    let sum = this.pool?.bytes() ?? 0;
    for (const l of this.#leases) {
      if (l.until <= now) this.#leases.delete(l);
      else sum += l.bytes;
    }
    return sum;
  }

  /** The most this gate ever counted at once (admitted plus garbage), for tests and the bench. */
  get peakUsedBytes(): number {
    return this.#peak;
  }

  /** A reservation for one job, grown as its steps need and released once; `background` for the queue consumer's jobs. */
  ticket(priority: "request" | "background" = "request"): Ticket {
    return new Ticket(this, priority === "background");
  }

  /** @internal Waits until `bytes` more fit, first come first served, or throws after `waitMs`. */
  async admit(bytes: number, waitMs: number, background = false): Promise<Lease> {
    if (bytes > this.capacityBytes) throw new AdmissionTimeout(`a job of ${(bytes / 2 ** 20).toFixed(0)} MiB can never fit ${(this.capacityBytes / 2 ** 20).toFixed(0)} MiB`);
    const deadline = Date.now() + waitMs;
    const me = { background };
    // A request goes ahead of every waiting background job.
    const at = background ? -1 : this.#queue.findIndex((w) => w.background);
    if (at < 0) this.#queue.push(me);
    else this.#queue.splice(at, 0, me);
    try {
      while (this.#queue[0] !== me || this.usedBytes + bytes > this.capacityBytes) {
        if (this.#queue[0] === me && this.pool && this.pool.bytes() > 0) {
          // Make room: the idle instances become garbage, freed at V8's next collection.
          this.#leases.add({ bytes: this.pool.drain(), until: Date.now() + this.releaseDelayMs });
          continue;
        }
        if (Date.now() >= deadline) throw new AdmissionTimeout(`no room for ${(bytes / 2 ** 20).toFixed(0)} MiB within ${waitMs} ms`);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      const lease = { bytes, until: Date.now() + MAX_JOB_MS };
      this.#leases.add(lease);
      this.#peak = Math.max(this.#peak, this.usedBytes);
      return lease;
    } finally {
      this.#queue.splice(this.#queue.indexOf(me), 1);
    }
  }

  /** @internal Ends a lease: its memory counts as garbage for `releaseDelayMs`. */
  release(lease: Lease): void {
    lease.until = Math.min(lease.until, Date.now() + this.releaseDelayMs);
  }
}

export class Ticket {
  #leases: Lease[] = [];
  #held = 0;
  #released = false;
  constructor(
    private readonly gate: MemoryGate,
    private readonly background = false,
  ) {}

  /** Grows this job's reservation to `bytes` in all (its whole-job prediction so far). */
  async ensure(bytes: number, waitMs: number): Promise<void> {
    if (this.#released || bytes <= this.#held) return;
    this.#leases.push(await this.gate.admit(bytes - this.#held, waitMs, this.background));
    this.#held = bytes;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const l of this.#leases) this.gate.release(l);
  }
}

let shared: MemoryGate | undefined;

/** The isolate's gate (module state is per isolate), sized from the first config that asks. */
export function isolateGate(capacityBytes: number, releaseDelayMs: number): MemoryGate {
  if (!shared || shared.capacityBytes !== capacityBytes || shared.releaseDelayMs !== releaseDelayMs) shared = new MemoryGate(capacityBytes, releaseDelayMs, { bytes: pooledBytes, drain: drainPool });
  return shared;
}
