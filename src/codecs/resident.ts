/**
 * @module codecs/resident
 * Codec instances that live for the isolate and serve job after job. A WASM memory is returned
 * to the system only when V8 collects its instance, seconds after the last reference goes
 * (measured 1.5-5 s), and a Worker cannot force a collection; an isolate that dropped every
 * job's instances carried the garbage of the last few jobs beside the next one, and the memory
 * gate (produce/admission) had to make every job wait for it. So instances are kept instead:
 * when a job ends, each of its instances is reset to the state a fresh one starts in and waits,
 * idle, for the next job of the same codec, which reuses its memory at once (and its pages,
 * already touched: a fresh instance pays about 3 ms per MiB it first writes).
 *
 * Resetting our own builds (emscripten `STANDALONE_WASM`, codecs/standalone) writes back the
 * memory image the module had right after `_initialize` and zeroes the rest, so a reused
 * instance computes exactly what a fresh one would, in a memory that is already large enough.
 * The emscripten-glue encoders (mozjpeg, @jsquash/webp) keep JS state beside their memory and
 * are reused as they are: every allocation of an encode is freed when it returns.
 *
 * An instance an exception went through is never reused (its stack pointer or heap may be
 * half-way). The memory gate decides which instances stay idle and lends them to the jobs it
 * admits (`lend`), so a job's reservation counts only what it will add to them.
 */

export interface Resident {
  readonly module: WebAssembly.Module;
  /** Bytes of its WASM memory now (it only grows). */
  bytes(): number;
  /** An exception went through it: it is dropped, never reused. */
  dirty: boolean;
  /** Back to the state a fresh instance starts in; false when that is not possible. */
  reset(): boolean;
}

/** The instances of one job: those the gate lent it at admission, and every one it used. */
export class InstanceScope {
  /** Idle instances the gate set aside for this job, by the codec parts it predicted. */
  readonly lent: Resident[] = [];
  readonly used = new Set<Resident>();

  /** Everything the job holds, lent or used. */
  all(): Resident[] {
    return [...new Set([...this.lent, ...this.used])];
  }

  clear(): void {
    this.lent.length = 0;
    this.used.clear();
  }
}

let current: InstanceScope | undefined;

/**
 * Runs `fn` with `scope` as the job whose instances codecs acquire. Codec calls create their
 * instances synchronously, before their first `await`, so the scope only needs to be set for
 * that synchronous stretch (no asynchronous context is needed, nor used).
 */
export function within<T>(scope: InstanceScope, fn: () => T): T {
  const before = current;
  current = scope;
  try {
    return fn();
  } finally {
    current = before;
  }
}

/** The job whose codec call is running now, if any (read before a codec's first `await`). */
export const currentScope = (): InstanceScope | undefined => current;

/**
 * An instance of `module` for the running job: one the gate lent it, else a fresh one from
 * `create`. Outside a job (tools, tests of codecs alone) the fresh instance is the caller's
 * alone, dropped after use.
 */
export function acquire<R extends Resident>(module: WebAssembly.Module, create: () => R, scope = current): R {
  if (!scope) return create();
  const r = (takeLent(scope, module) as R | undefined) ?? create();
  scope.used.add(r);
  return r;
}

/** Removes and returns an instance of `module` lent to `scope`. */
export function takeLent(scope: InstanceScope, module: WebAssembly.Module): Resident | undefined {
  const at = scope.lent.findIndex((r) => r.module === module && !scope.used.has(r));
  if (at < 0) return undefined;
  const [r] = scope.lent.splice(at, 1);
  scope.used.add(r);
  return r;
}

const idle: Resident[] = [];

/** Bytes of the idle instances. */
export const idleBytes = (): number => idle.reduce((sum, r) => sum + r.bytes(), 0);

/** How many idle instances there are (for tests and the bench). */
export const idleCount = (): number => idle.length;

/**
 * The idle instance of `module` best for a part predicted at `bytes`: the smallest that is at
 * least that large (it will not grow), else the largest. Not removed.
 */
export function bestIdle(module: WebAssembly.Module, bytes: number, exclude: ReadonlySet<Resident> = new Set()): Resident | undefined {
  let best: Resident | undefined;
  for (const r of idle) {
    if (r.module !== module || exclude.has(r)) continue;
    if (!best) best = r;
    else {
      const [a, b] = [r.bytes(), best.bytes()];
      const fits = a >= bytes;
      const bestFits = b >= bytes;
      if ((fits && (!bestFits || a < b)) || (!fits && !bestFits && a > b)) best = r;
    }
  }
  return best;
}

/** Takes `r` out of the idle set (lent to a job). */
export function takeIdle(r: Resident): void {
  const at = idle.indexOf(r);
  if (at >= 0) idle.splice(at, 1);
}

/** Most idle instances of one module: a decoder and a row encoder of the same codec may run at once. */
export const IDLE_PER_MODULE = 2;

/**
 * Gives back the instances of a job that ended: each clean one is reset and kept idle while
 * `room(bytes)` says there is room for it; the others are dropped. Returns the bytes kept.
 */
export function giveBack(scope: InstanceScope, room: (bytes: number) => boolean): number {
  let kept = 0;
  for (const r of scope.all()) {
    const bytes = r.bytes();
    const sameModule = idle.filter((i) => i.module === r.module).length;
    if (!r.dirty && sameModule < IDLE_PER_MODULE && room(bytes) && r.reset()) {
      idle.push(r);
      kept += bytes;
    }
  }
  scope.clear();
  return kept;
}

/**
 * Drops the largest idle instance not in `keep`, preferring modules not in `wanted` (V8 frees it
 * at a later collection); returns it, or undefined when none is left to drop.
 */
export function evictOne(wanted: ReadonlySet<WebAssembly.Module> = new Set(), keep: ReadonlySet<Resident> = new Set()): Resident | undefined {
  const order = idle.filter((r) => !keep.has(r)).sort((a, b) => Number(wanted.has(a.module)) - Number(wanted.has(b.module)) || b.bytes() - a.bytes());
  const r = order[0];
  if (r) takeIdle(r);
  return r;
}

/** Drops every idle instance; returns their bytes. */
export function drainIdle(): number {
  const bytes = idleBytes();
  idle.length = 0;
  return bytes;
}
