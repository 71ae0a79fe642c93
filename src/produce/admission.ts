/**
 * @module produce/admission
 * Isolate-wide memory admission. Cloudflare gives an isolate 128 MB, WASM memories included,
 * shared by every request it runs at once; one job over it kills them all. Each production
 * declares its predicted whole-job memory (produce/budget) before it runs; the gate admits jobs
 * while the sum stays under MEMORY_BUDGET_MB, and queues the rest in FIFO order for at most
 * ADMISSION_WAIT_MS.
 *
 * What the gate counts, at any moment:
 * - idle codec memories (codecs/resident), exactly (their sizes): memories any of our own
 *   builds runs in, and instances of the glue encoders;
 * - each admitted job's prediction. Its codec parts come out of the idle memories the gate
 *   lends it at admission, so a job adds only what they must grow by, plus its JS buffers: a
 *   stream of jobs, even of other codecs, reuses the same memory and never waits on garbage;
 * - garbage: what a finished job leaves to V8's next collection (instances an error went
 *   through, instances there was no room to keep, JS buffers it could not free), for
 *   MEMORY_RELEASE_MS, since a Worker cannot force a collection (measured: 1.5-5 s). The job's
 *   own buffers (its original, its pixels) are not garbage: they are detached when it ends,
 *   which returns their memory at once (produce/codec-session `free`). An idle instance the
 *   next job cannot use is dropped (becoming garbage) only when that job could not fit otherwise;
 * - apart from those, originals read before their job is priced (the price needs the header):
 *   at most REQUEST_RESERVE of the budget at once (`reserveRead`), so a read never drops a
 *   codec memory, and a job that must wait for room lets its original go and reads it again
 *   once admitted.
 *
 * Requests come before background jobs (the queue consumer's deferred variants and async jobs,
 * which share the isolate): a waiting request is admitted ahead of every waiting job, whatever
 * their arrival order, and background jobs never take the last REQUEST_RESERVE of the budget,
 * so a request that fits in it (any thumbnail) never waits for background work. A background
 * job larger than the rest runs only when nothing else holds memory; a larger request that
 * arrives meanwhile waits for it at most ADMISSION_WAIT_MS, then answers 503 + Retry-After. A
 * job of the queue that found no room within BACKGROUND_WAIT_MS becomes due for DUE_MS:
 * requests are then admitted only beside it, so a steady stream of them cannot starve it. A
 * job already running is never interrupted; the pipeline gives the event loop a turn every few
 * hundred milliseconds of its work (produce/yield).
 *
 * Two rules of the Workers runtime shape this code. A request must not wait on something only
 * another request can settle (the runtime cancels it as hung when its own I/O is done), so
 * waiters poll with their own timers instead of being woken. And a request the runtime cancels
 * never runs its `finally`, so every reservation is a lease that lapses after MAX_JOB_MS.
 */

import { bestIdle, evictOne, giveBack, idleBytes, kindOf, takeIdle, type InstanceScope, type Resident } from "../codecs/resident";
import type { ReadRoom } from "../storage/r2";

export class AdmissionTimeout extends Error {
  override name = "AdmissionTimeout";
  constructor(
    message: string,
    /** The job is larger than the whole budget: waiting would never help (a final verdict). */
    readonly never = false,
    /** How long it waited before giving up. */
    readonly waitedMs = 0,
  ) {
    super(message);
  }
}

/**
 * Garbage is counted until V8 has collected it: a garbage lease holds weak references to what it
 * stands for (a dropped instance, a finished job's session and so its buffers) and ends when
 * none of them is left, or after the release delay at the latest. Weak references are read by
 * the gate itself, inside a request: a FinalizationRegistry callback would run in the global
 * scope, where workerd refuses timers and I/O (seen breaking the test pool's messages).
 */
function collected(lease: Lease): boolean {
  return lease.refs !== undefined && lease.refs.every((r) => r.deref() === undefined);
}

/**
 * A nudge for V8's collector, made only while a job waits for garbage: a 64 MiB WASM memory,
 * never touched (no page of it is ever resident) and dropped at once. Measured in workerd: a
 * dropped, touched 64 MiB memory was still alive after 15 s in an idle isolate; one such
 * allocation had it collected within 21 ms (a 16 MiB one never did). Under wrangler dev it had
 * a finished job's session collected within 19-69 ms, but an idle codec instance dropped to
 * make room only about 5 s later, however often it was made. Later traces under wrangler dev
 * (back-to-back 12-24 MP jobs) saw finished jobs' productions still alive 5 s on while an
 * unreferenced object made at their release was collected at once: the nudge brings young
 * collections, not the major one that old objects need.
 */
function nudgeCollector(): void {
  new WebAssembly.Memory({ initial: 1024 });
}
/**
 * Idle instances are kept while they take at most this share of the budget. Measured under
 * wrangler dev (ten 12-24 MP photos, then AVIF/WebP/JPEG of one in turn): keeping up to all of
 * it made the sequence 17% faster but raised workerd's peak RSS from 135 to 178 MiB.
 */
const IDLE_SHARE = 0.75;
/**
 * The share of the budget background jobs leave to requests: a thumbnail of a 24 MP photo is
 * predicted at 10-25 MiB (produce/budget), a third of the default 112 MiB is 37 MiB.
 */
const REQUEST_RESERVE = 1 / 3;

/** The most background jobs may hold while requests run: the budget less the requests' reserve. */
export const backgroundShare = (capacityBytes: number): number => capacityBytes * (1 - REQUEST_RESERVE);
/** At most one nudge this often. */
const NUDGE_MS = 250;

/**
 * Longest a background job waits for room before its message is retried later. The queue
 * consumer takes one message at a time: a re-encode that waited the requests' 8 s for room it
 * could not get held up every job behind it (the soak: async jobs still queued minutes later,
 * behind re-encodes failing one after another with "no room within 8000 ms").
 */
const BACKGROUND_WAIT_MS = 1000;

/**
 * A background job that found no room within BACKGROUND_WAIT_MS becomes due, for at most this
 * long: requests are then admitted only beside it, so the ones running end and it gets its turn.
 * Without it, under a steady stream of requests a job never found the isolate free enough (the
 * soak: two phones scrolling kept 20-50 MiB in use at every moment, and 6 of 9 async jobs failed
 * after 5 deliveries). So a background job holds a request back at most DUE_MS before it runs,
 * and a request that does not fit beside a running job waits for it, as for any other job.
 * Re-encodes (which pass no wait) never become due: they only make stored files smaller.
 */
const DUE_MS = 3000;
/** Only a job that leaves this share of the budget beside it becomes due: a thumbnail still runs with it. */
const DUE_LEAVES = REQUEST_RESERVE / 2;

/** Longest a job can hold memory: the platform's largest CPU limit (300 s) is far above any job here. */
const MAX_JOB_MS = 120_000;
/** How often a waiting job looks again. */
const POLL_MS = 20;

interface Lease {
  bytes: number;
  /** Counted until then (ms since epoch): the lease's end, or its release plus the release delay. */
  until: number;
  /** What a finished job left to V8 (counted for the release delay), not a running job. */
  garbage: boolean;
  /** What the garbage stands for: once V8 has collected all of it, it is no longer counted. */
  refs?: WeakRef<object>[];
}

/** What the gate reads of a running job (codecs' CodecSession): its instances and its measured high-water mark. */
export interface JobMemory {
  readonly instances: InstanceScope;
  /** The job's measured whole-job high-water mark (WASM and JS), X-Image-Peak-Memory. */
  readonly peakBytes: number;
  /** What holds the job's JS buffers, weakly (its production): collected, they are too. */
  readonly holder?: WeakRef<object>;
  /** Returns the memory of the job's own JS buffers at once (detached); the bytes freed. */
  free?(): number;
}

/** One codec instance a job will use, as predicted (produce/budget `Cost.parts`). */
export interface Part {
  module: WebAssembly.Module;
  bytes: number;
}

/** A job waiting for room: `small` when it needs at most the requests' reserve; `due`, the bytes of a due background job (DUE_MS). */
interface Waiter {
  background: boolean;
  small: boolean;
  due: number;
}

export class MemoryGate {
  #leases = new Set<Lease>();
  /** Waiters, requests first and each kind in arrival order; the first may take capacity (see `#mayTry`). */
  #queue: Waiter[] = [];
  #peak = 0;
  #nudged = 0;
  /** Bytes of originals being read by requests whose job is not admitted yet (`reserveRead`). */
  #reading = 0;

  constructor(
    readonly capacityBytes: number,
    readonly releaseDelayMs: number,
  ) {}

  /** Bytes counted now: admitted jobs, recent garbage and idle codec instances. */
  get usedBytes(): number {
    return this.#counted(true);
  }

  /** What finished jobs left for V8 to collect, still counted. */
  get garbageBytes(): number {
    return this.#counted(true) - this.#counted(false);
  }

  #counted(withGarbage: boolean): number {
    const now = Date.now();
    let sum = idleBytes();
    for (const l of this.#leases) {
      if (l.until <= now || collected(l)) this.#leases.delete(l);
      else if (withGarbage || !l.garbage) sum += l.bytes;
    }
    return sum;
  }

  /** Bytes of originals read (or being read) by jobs not admitted yet. */
  get readingBytes(): number {
    return this.#reading;
  }

  /**
   * Room to read an original of `bytes` before its job is priced (the price needs the header,
   * so the bytes come first). Reads have their own allowance, REQUEST_RESERVE of the budget,
   * apart from the codec memories: a read never makes the gate drop an idle memory its own job
   * is about to reuse (traced: a 2.3 MB read evicted a 71 MiB decoder memory, then waited 5 s
   * for it to be collected), and however many requests arrive at once, the originals they hold
   * unpriced stay within it (issue 30: 40 concurrent reads of a 24 MP photo, +201 MiB). A read
   * larger than the allowance goes alone. Waits at most `waitMs`, polling; returns the release.
   */
  async reserveRead(bytes: number, waitMs: number): Promise<{ waitedMs: number; release: () => void }> {
    const started = Date.now();
    let read;
    while (!(read = this.tryReserveRead(bytes))) {
      if (Date.now() - started >= waitMs) throw new AdmissionTimeout(`no room to read ${(bytes / 2 ** 20).toFixed(1)} MiB within ${waitMs} ms`, false, Date.now() - started);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return { waitedMs: Date.now() - started, release: read.release };
  }

  /** `reserveRead` if there is room at once, else undefined. */
  tryReserveRead(bytes: number): { release: () => void } | undefined {
    if (this.#reading > 0 && this.#reading + bytes > this.capacityBytes * REQUEST_RESERVE) return undefined;
    this.#reading += bytes;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#reading -= bytes;
      },
    };
  }

  /** The most this gate ever counted at once (admitted plus garbage), for tests and the bench. */
  get peakUsedBytes(): number {
    return this.#peak;
  }

  /** A reservation for one job, grown as its steps need and released once; `background` for the queue consumer's jobs. */
  ticket(priority: "request" | "background" = "request"): Ticket {
    return new Ticket(this, priority === "background");
  }

  /**
   * @internal Waits until `bytes` more fit, first come first served, or throws after `waitMs`.
   * `parts`: the job's codec instances as predicted; idle ones of those codecs are lent to
   * `scope` and only their growth counts. Returns the lease and how long the job waited.
   */
  async admit(bytes: number, waitMs: number, background: boolean, parts: readonly Part[] = [], scope?: InstanceScope): Promise<{ lease: Lease; waitedMs: number }> {
    if (bytes > this.capacityBytes) throw new AdmissionTimeout(`a job of ${(bytes / 2 ** 20).toFixed(0)} MiB can never fit ${(this.capacityBytes / 2 ** 20).toFixed(0)} MiB`, true);
    const started = Date.now();
    let wait = background ? Math.min(waitMs, BACKGROUND_WAIT_MS) : waitMs;
    let polled = false;
    const small = bytes <= this.capacityBytes * REQUEST_RESERVE;
    const me: Waiter = { background, small, due: 0 };
    // A request goes ahead of every waiting background job.
    const at = background ? -1 : this.#queue.findIndex((w) => w.background);
    if (at < 0) this.#queue.push(me);
    else this.#queue.splice(at, 0, me);
    try {
      for (;;) {
        if (background && !me.due && waitMs > wait && Date.now() - started >= wait && bytes <= this.capacityBytes * (1 - DUE_LEAVES) && !this.#queue.some((w) => w.due)) {
          me.due = bytes;
          wait = Math.min(waitMs, wait + DUE_MS);
        }
        if (this.#mayTry(me)) {
          const lend = scope ? this.#lendable(bytes, parts, scope) : [];
          // Lent instances leave the idle count; the lease holds the parts at the larger of
          // the prediction and what the instance already is.
          const credit = lend.reduce((sum, l) => sum + Math.min(l.r.bytes(), l.part.bytes), 0);
          const excess = lend.reduce((sum, l) => sum + Math.max(0, l.r.bytes() - l.part.bytes), 0);
          // Whether the job may exceed the background share is judged on the whole job, lent
          // memory included: a 76 MiB job lent a 48 MiB idle memory asked for only 28 MiB more,
          // so it was held to the share, which its total exceeded, and refused every time even
          // alone (the soak's async jobs: each 1600w JPEG of a 12 MP photo ended in
          // admission-timeout after 5 deliveries).
          const limit = this.#limit(bytes, me);
          if (this.usedBytes + bytes - credit <= limit) {
            for (const l of lend) {
              takeIdle(l.r);
              scope!.lent.push(l.r);
              scope!.lentFor.set(l.r, l.part.module);
            }
            const lease: Lease = { bytes: bytes + excess, until: Date.now() + MAX_JOB_MS, garbage: false };
            this.#leases.add(lease);
            this.#peak = Math.max(this.#peak, this.usedBytes);
            return { lease, waitedMs: polled ? Date.now() - started : 0 };
          }
          // Idle instances this job cannot use only hold room: one is dropped (and counts as
          // garbage until collected) when, without any garbage, the job still would not fit.
          if (this.#counted(false) + bytes - credit > limit) {
            const dropped = evictOne(new Set(parts.map((p) => kindOf(p.module))), new Set(lend.map((l) => l.r)));
            if (dropped) {
              this.#leases.add({ bytes: dropped.bytes(), until: Date.now() + this.releaseDelayMs, garbage: true, refs: [new WeakRef(dropped)] });
              continue;
            }
          }
          // Only garbage stands in the way: ask V8 to collect it.
          if (this.garbageBytes > 0 && Date.now() - this.#nudged >= NUDGE_MS) {
            this.#nudged = Date.now();
            nudgeCollector();
          }
        }
        if (Date.now() >= started + wait) throw new AdmissionTimeout(`no room for ${(bytes / 2 ** 20).toFixed(0)} MiB within ${wait} ms`, false, Date.now() - started);
        polled = true;
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    } finally {
      this.#queue.splice(this.#queue.indexOf(me), 1);
    }
  }

  /**
   * Whether `me` may take room now: the first waiter may; a small job also may when every
   * waiter ahead of it is large (a thumbnail never waits behind a full-size view that is
   * itself waiting for garbage to be collected; it is done long before), a background job only
   * behind background jobs. Small jobs keep their order among themselves.
   */
  #mayTry(me: Waiter): boolean {
    // The due job: the requests ahead of it are held to the room beside it.
    if (me.due) return true;
    const ahead = this.#queue.slice(0, this.#queue.indexOf(me));
    return ahead.length === 0 || (me.small && ahead.every((w) => !w.small && (w.background || !me.background)));
  }

  /**
   * The most the gate may count once a job needing `bytes` more is admitted: the budget for a
   * request, less a due job's room; for a background job, the budget less the requests'
   * reserve, or the whole budget when it is due, or needs more than the share and no other job
   * holds memory (it runs alone).
   */
  #limit(bytes: number, me: Waiter): number {
    if (!me.background) return this.capacityBytes - (this.#queue.find((w) => w.due)?.due ?? 0);
    if (me.due) return this.capacityBytes;
    const shared = backgroundShare(this.capacityBytes);
    if (bytes <= shared) return shared;
    const now = Date.now();
    const alone = [...this.#leases].every((l) => l.garbage || l.until <= now) && this.#queue.every((w) => w.background);
    return alone ? this.capacityBytes : shared;
  }

  /**
   * The idle resident to lend for each part (each to one part at most); none for a part that
   * one the job already holds can serve (a fallback candidate's second estimate).
   */
  #lendable(bytes: number, parts: readonly Part[], scope: InstanceScope): { part: Part; r: Resident }[] {
    const chosen = new Set<Resident>();
    const out: { part: Part; r: Resident }[] = [];
    const held = new Map<object, number>();
    for (const r of scope.all()) held.set(r.kind, (held.get(r.kind) ?? 0) + 1);
    let excess = 0;
    for (const part of parts) {
      const kind = kindOf(part.module);
      const holding = held.get(kind) ?? 0;
      if (holding > 0) {
        held.set(kind, holding - 1);
        continue;
      }
      const r = bestIdle(kind, part.bytes, chosen);
      if (!r) continue;
      // An instance so much larger than the part that the job could never fit with it (the
      // 71 MiB decoder of a 24 MP progressive JPEG lent to a 12 MP thumbnail) is not
      // lent: the job gets a fresh one, and the large one may be dropped to make room.
      const over = Math.max(0, r.bytes() - part.bytes);
      if (bytes + excess + over > this.capacityBytes) continue;
      excess += over;
      chosen.add(r);
      out.push({ part, r });
    }
    return out;
  }

  /**
   * @internal Ends a job's leases. Its instances go back to the idle set while there is room
   * (codecs/resident); what else it measured (its JS buffers, instances not kept) counts as
   * garbage for `releaseDelayMs`, never more than it had reserved.
   */
  release(leases: Lease[], jobs: JobMemory[]): void {
    const now = Date.now();
    const held = leases.reduce((sum, l) => sum + (l.until > now ? l.bytes : 0), 0);
    for (const l of leases) this.#leases.delete(l);
    let kept = 0;
    let measured = 0;
    let freed = 0;
    for (const job of jobs) {
      measured += job.peakBytes;
      kept += giveBack(job.instances, (b) => idleBytes() + b <= IDLE_SHARE * this.capacityBytes);
      freed += job.free?.() ?? 0;
    }
    // A job that ran no codec (refused, or served by another request) measured nothing. Its
    // own buffers are freed at once (detached): only what it could not free is garbage.
    const left = Math.min(held, Math.max(0, (jobs.length ? measured : held) - kept - freed));
    // The job's buffers, and instances it did not give back, go with what holds them (its
    // production); a session with no holder stands for itself.
    if (left > 0) this.#leases.add({ bytes: left, until: now + this.releaseDelayMs, garbage: true, refs: jobs.length ? jobs.map((j) => j.holder ?? new WeakRef(j)) : undefined });
  }
}

export class Ticket {
  #leases: Lease[] = [];
  #jobs = new Set<JobMemory>();
  #held = 0;
  #released = false;
  #waitedMs = 0;
  constructor(
    private readonly gate: MemoryGate,
    private readonly background = false,
  ) {}

  /**
   * Grows this job's reservation to `bytes` in all (its whole-job prediction so far); `parts`
   * are its codec instances as predicted, lent from the idle ones to `job`.
   */
  async ensure(bytes: number, waitMs: number, parts: readonly Part[] = [], job?: JobMemory): Promise<void> {
    if (job) this.#jobs.add(job);
    if (this.#released || bytes <= this.#held) return;
    // Called for a whole job (parts predicted): its original is in its price from now on.
    const read = parts.length ? this.#read : undefined;
    let admitted;
    try {
      admitted = await this.gate.admit(bytes - this.#held, waitMs, this.background, parts, job?.instances);
    } catch (e) {
      if (e instanceof AdmissionTimeout) this.#waitedMs += e.waitedMs;
      throw e;
    }
    const { lease, waitedMs } = admitted;
    this.#waitedMs += waitedMs;
    this.#leases.push(lease);
    this.#held = bytes;
    if (read) {
      read.release();
      this.#read = undefined;
    }
  }

  #read?: { release: () => void };

  /**
   * Room to read this job's original before it is priced (`MemoryGate.reserveRead`), as the
   * store asks for it: at once, or by waiting at most `waitMs()`.
   */
  readRoom(waitMs: () => number): ReadRoom {
    return {
      now: (bytes) => {
        if (this.#needsNoRead()) return true;
        this.#read = this.gate.tryReserveRead(bytes);
        return this.#read !== undefined;
      },
      wait: (bytes) => this.#reserveRead(bytes, waitMs()),
    };
  }

  /** An admitted job reads its original within its price (read again after letting it go). */
  #needsNoRead(): boolean {
    return this.#released || this.#read !== undefined || this.#held > 0;
  }

  async #reserveRead(bytes: number, waitMs: number): Promise<void> {
    if (this.#needsNoRead()) return;
    try {
      const r = await this.gate.reserveRead(bytes, waitMs);
      this.#waitedMs += r.waitedMs;
      this.#read = r;
    } catch (e) {
      if (e instanceof AdmissionTimeout) this.#waitedMs += e.waitedMs;
      throw e;
    }
  }

  /**
   * The job let its original go while it waits for room: it no longer holds it. Nothing is
   * counted for the bytes: a young ArrayBuffer, freed at the next scavenge (V8's young
   * collections run every few MiB allocated; an object a few milliseconds old was collected
   * within 21 ms in workerd, where old ones waited seconds).
   */
  letGo(): void {
    this.#read?.release();
    this.#read = undefined;
  }

  /** Time this job spent waiting for room (Server-Timing `wait`). */
  get waitedMs(): number {
    return this.#waitedMs;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.letGo();
    this.gate.release(this.#leases, [...this.#jobs]);
  }
}

let shared: MemoryGate | undefined;

/** The isolate's gate (module state is per isolate), sized from the first config that asks. */
export function isolateGate(capacityBytes: number, releaseDelayMs: number): MemoryGate {
  if (!shared || shared.capacityBytes !== capacityBytes || shared.releaseDelayMs !== releaseDelayMs) shared = new MemoryGate(capacityBytes, releaseDelayMs);
  return shared;
}
