/**
 * @module codecs/standalone
 * Instances of our own codec builds (codecs/<name>/, `npm run build:codecs`): emscripten
 * `STANDALONE_WASM` modules with no generated JS glue, so their imports are the few below.
 * Resident (codecs/resident): reset to their initial memory image after each job and reused.
 */
import { acquire, type Resident } from "./resident";

export interface StandaloneExports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(ptr: number): void;
  _initialize(): void;
}

/** An error the library reported through `js_throw`: its own message, e.g. libjpeg's. */
export class CodecError extends Error {
  override name = "CodecError";
}

/** A resident instance of one of our builds: its exports, and where its job-specific imports go. */
interface StandaloneResident extends Resident {
  exports: StandaloneExports;
  /** The module's own imports besides the standard ones (giflib's `js_read`), set per job. */
  env: Record<string, (...args: never[]) => unknown>;
}

/**
 * The memory image of each module right after `_initialize` (static data, libc's state), up to
 * its last non-zero byte: what `reset` writes back. The same for every instance of the module.
 */
const images = new WeakMap<WebAssembly.Module, Uint8Array>();

/**
 * An instance of `module` for the running job (codecs/resident: one lent to it, or a fresh one).
 * `env`: the module's own imports besides these (giflib's `js_read`).
 */
export function instantiateStandalone<E extends StandaloneExports>(module: WebAssembly.Module, env: Record<string, (...args: never[]) => unknown> = {}): E {
  const r = acquire(module, () => createStandalone(module));
  r.env = env;
  return r.exports as E;
}

function createStandalone(module: WebAssembly.Module): StandaloneResident {
  let memory: WebAssembly.Memory | undefined;
  const view = () => new DataView(memory!.buffer);
  const standard: Record<string, (...args: never[]) => unknown> = {
    // The glue's error path: never returns, the exception unwinds the WASM frames, and the
    // instance is marked dirty (never reused).
    js_throw(ptr: number): never {
      const bytes = new Uint8Array(memory!.buffer);
      let end = ptr;
      while (end < bytes.length && bytes[end] !== 0) end++;
      throw new CodecError(new TextDecoder().decode(bytes.subarray(ptr, end)));
    },
    emscripten_notify_memory_growth() {},
    // The high half of an i64 returned to JS (emscripten's legalisation); nothing reads it.
    setTempRet0() {},
  };
  const env: Record<string, (...args: never[]) => unknown> = { ...standard };
  // Every other `env` import calls the current job's function of that name.
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.module === "env" && i.kind === "function" && !(i.name in standard)) env[i.name] = (...args: never[]) => r.env[i.name](...args);
  }
  const imports = {
    env,
    // libc's stdio and getenv, linked but unused: no environment, writes go nowhere.
    wasi_snapshot_preview1: {
      proc_exit(code: number): never {
        throw new CodecError(`codec exited with status ${code}`);
      },
      environ_sizes_get(count: number, size: number) {
        view().setUint32(count, 0, true);
        view().setUint32(size, 0, true);
        return 0;
      },
      environ_get: () => 0,
      fd_close: () => 0,
      fd_read(_fd: number, _iovs: number, _iovsLen: number, read: number) {
        view().setUint32(read, 0, true);
        return 0;
      },
      fd_seek: () => 0,
      fd_write(_fd: number, iovs: number, iovsLen: number, written: number) {
        let n = 0;
        for (let i = 0; i < iovsLen; i++) n += view().getUint32(iovs + i * 8 + 4, true);
        view().setUint32(written, n, true);
        return 0;
      },
    },
  };
  const instance = new WebAssembly.Instance(module, imports);
  const raw = instance.exports as unknown as StandaloneExports & Record<string, unknown>;
  memory = raw.memory;
  raw._initialize();
  let image = images.get(module);
  if (!image) {
    const bytes = new Uint8Array(memory.buffer);
    let last = bytes.length - 1;
    while (last >= 0 && bytes[last] === 0) last--;
    image = bytes.slice(0, last + 1);
    images.set(module, image);
  }
  const initial = image;
  // Every call goes through a wrapper that marks the instance dirty when an exception leaves
  // it: the unwind skipped the C code's epilogues (stack pointer, half-built state).
  const exports: Record<string, unknown> = { memory };
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value !== "function") continue;
    const fn = value as (...args: unknown[]) => unknown;
    exports[name] = (...args: unknown[]) => {
      try {
        return fn(...args);
      } catch (e) {
        r.dirty = true;
        throw e;
      }
    };
  }
  const r: StandaloneResident = {
    module,
    exports: exports as unknown as StandaloneExports,
    env: {},
    dirty: false,
    bytes: () => memory!.buffer.byteLength,
    reset() {
      const bytes = new Uint8Array(memory!.buffer);
      bytes.set(initial);
      bytes.fill(0, initial.length);
      r.env = {};
      return true;
    },
  };
  return r;
}

/** Copies `bytes` into the instance's memory; returns the pointer. */
export function copyIn(e: StandaloneExports, bytes: Uint8Array): number {
  const ptr = e.malloc(bytes.byteLength);
  if (!ptr) throw new CodecError("out of memory");
  new Uint8Array(e.memory.buffer, ptr, bytes.byteLength).set(bytes);
  return ptr;
}
