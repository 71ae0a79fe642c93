/**
 * @module codecs/resident
 * Codec instances that live for the isolate and serve job after job. A WASM memory is returned
 * to the system only when V8 collects its instance, seconds after the last reference goes
 * (measured 1.5-5 s), and a Worker cannot force a collection; an isolate that dropped every
 * job's instances carried the garbage of the last few jobs beside the next one, and the memory
 * gate (produce/admission) had to make every job wait for it. So memories are kept instead:
 * when a job ends, each waits, idle, for the next job that can use it, which reuses it at once
 * (and its pages, already touched: a fresh memory pays about 3 ms per MiB it first writes).
 *
 * Our own builds (emscripten `STANDALONE_WASM` with `IMPORTED_MEMORY`, codecs/standalone) do not
 * own their memory: what stays resident is the memory itself, of kind `SHARED_MEMORY`, and any of
 * those codecs runs in any idle one. Each use instantiates the module afresh in a zeroed memory
 * (measured: under 0.5 ms for libaom's 4.5 MB module once compiled), so it computes exactly what
 * a fresh instance would, even after an exception went through the last one. So a change of
 * codec (a JPEG after AVIFs) reuses the memory the last job grew instead of dropping it.
 * Every encoder and row decoder is one of those builds, so a job never needs a memory of a kind
 * no idle one is: a codec with JS glue beside its memory (once mozjpeg and @jsquash/webp's
 * encoder) could only reuse an instance of itself, and dropping an idle memory to make room for
 * one left garbage that the next job waited for. A module that owns its memory is resident only
 * as an instance of itself (its kind is its module); none is kept idle today.
 *
 * The memory gate decides which stay idle and lends them to the jobs it admits, so a job's
 * reservation counts only what it will add to them.
 */

export interface Resident {
  /** What it can serve: `SHARED_MEMORY` (any of our builds), or the one module it is an instance of. */
  readonly kind: object;
  /** Bytes of its WASM memory now (it only grows). */
  bytes(): number;
  /** An exception went through it: it is dropped, never reused. */
  dirty: boolean;
  /** Back to the state a fresh instance starts in; false when that is not possible. */
  reset(): boolean;
}

/** The kind of a WASM memory that any of our own builds can run in (codecs/standalone). */
export const SHARED_MEMORY: object = Object.freeze({ kind: "shared WASM memory" });

const kinds = new WeakMap<WebAssembly.Module, object>();

/**
 * The kind of resident an instance of `module` needs: a module that imports its memory (our own
 * builds) runs in any `SHARED_MEMORY`; any other is resident only as an instance of itself.
 */
export function kindOf(module: WebAssembly.Module): object {
  let kind = kinds.get(module);
  if (!kind) {
    kind = WebAssembly.Module.imports(module).some((i) => i.kind === "memory") ? SHARED_MEMORY : module;
    kinds.set(module, kind);
  }
  return kind;
}

/** The instances of one job: those the gate lent it at admission, and every one it used. */
export class InstanceScope {
  /** Idle instances the gate set aside for this job, by the codec parts it predicted. */
  readonly lent: Resident[] = [];
  /** The module of the part each lent resident was set aside for. */
  readonly lentFor = new Map<Resident, WebAssembly.Module>();
  readonly used = new Set<Resident>();

  /** Everything the job holds, lent or used. */
  all(): Resident[] {
    return [...new Set([...this.lent, ...this.used])];
  }

  clear(): void {
    this.lent.length = 0;
    this.lentFor.clear();
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
 * A resident that can run `module`, for the running job: one the gate lent it, else a fresh one from
 * `create`. Outside a job (tools, tests of codecs alone) the fresh one is the caller's alone,
 * dropped after use.
 */
export function acquire<R extends Resident>(module: WebAssembly.Module, create: () => R, scope = current): R {
  if (!scope) return create();
  const r = (takeLent(scope, module) as R | undefined) ?? create();
  scope.used.add(r);
  return r;
}

/**
 * Removes and returns a resident lent to `scope` that can run `module`: the one set aside for a
 * part of that module if any, else the largest of its kind.
 */
export function takeLent(scope: InstanceScope, module: WebAssembly.Module): Resident | undefined {
  const kind = kindOf(module);
  let at = -1;
  const rank = (r: Resident) => [Number(scope.lentFor.get(r) === module), r.bytes()];
  scope.lent.forEach((r, i) => {
    if (r.kind !== kind || scope.used.has(r)) return;
    if (at < 0) return void (at = i);
    const [a, b] = [rank(r), rank(scope.lent[at])];
    if (a[0] > b[0] || (a[0] === b[0] && a[1] > b[1])) at = i;
  });
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
 * The idle resident of `kind` best for a part predicted at `bytes`: the smallest that is at
 * least that large (it will not grow), else the largest. Not removed.
 */
export function bestIdle(kind: object, bytes: number, exclude: ReadonlySet<Resident> = new Set()): Resident | undefined {
  let best: Resident | undefined;
  for (const r of idle) {
    if (r.kind !== kind || exclude.has(r)) continue;
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

/**
 * Hands the residents `scope` started using since `before` back to it as lent, reset, so the
 * job's next codec call runs in them instead of growing another memory: for codec calls that
 * run strictly one after another, each done with its instance before the next starts
 * (produce/perceptual's trial encodes). A dirty one is dropped.
 */
export function recycle(scope: InstanceScope, before: ReadonlySet<Resident>): void {
  for (const r of [...scope.used]) {
    if (before.has(r)) continue;
    scope.used.delete(r);
    if (!r.dirty && r.reset()) scope.lent.push(r);
  }
}

/** Takes `r` out of the idle set (lent to a job). */
export function takeIdle(r: Resident): void {
  const at = idle.indexOf(r);
  if (at >= 0) idle.splice(at, 1);
}

/**
 * Most idle residents of one kind: two instances of one glue module (a fallback candidate's
 * second encode); shared memories for two jobs of three parts (decoder, resampler, encoder).
 */
const idleLimit = (kind: object) => (kind === SHARED_MEMORY ? 6 : 2);

/**
 * Gives back the instances of a job that ended: each clean one is reset and kept idle while
 * `room(bytes)` says there is room for it; the others are dropped. Returns the bytes kept.
 */
export function giveBack(scope: InstanceScope, room: (bytes: number) => boolean): number {
  let kept = 0;
  for (const r of scope.all()) {
    const bytes = r.bytes();
    const sameKind = idle.filter((i) => i.kind === r.kind).length;
    if (!r.dirty && sameKind < idleLimit(r.kind) && room(bytes) && (!scope.used.has(r) || r.reset())) {
      idle.push(r);
      kept += bytes;
    }
  }
  scope.clear();
  return kept;
}

/**
 * Drops the largest idle resident not in `keep`, preferring kinds not in `wanted` (V8 frees it
 * at a later collection); returns it, or undefined when none is left to drop.
 */
export function evictOne(wanted: ReadonlySet<object> = new Set(), keep: ReadonlySet<Resident> = new Set()): Resident | undefined {
  const order = idle.filter((r) => !keep.has(r)).sort((a, b) => Number(wanted.has(a.kind)) - Number(wanted.has(b.kind)) || b.bytes() - a.bytes());
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
