/**
 * @module codecs/standalone
 * Instances of our own codec builds (native/<name>/, `npm run build:native`): emscripten
 * `STANDALONE_WASM` modules with no generated JS glue, so their imports are the few below, and
 * `IMPORTED_MEMORY`: each runs in a memory we hand it, resident (codecs/resident) and shared by
 * all of them, one job after another.
 */
import { acquire, kindOf, SHARED_MEMORY, type Resident } from "./resident";

export interface StandaloneExports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(ptr: number): void;
}

/** An error the library reported through `js_throw`: its own message, e.g. libjpeg's. */
export class CodecError extends Error {
  override name = "CodecError";
}

/**
 * A fresh memory's pages: the largest `INITIAL_MEMORY` in native/build.sh (2 MB, libaom's), so
 * that every module can be instantiated in any memory. A module's own limits cannot be read
 * from JS (no type reflection), and instantiation fails on a smaller one.
 */
const INITIAL_PAGES = 32;
/** Their `MAXIMUM_MEMORY` (1 GB): an imported memory must declare a maximum no larger. */
const MAXIMUM_PAGES = 16384;

/** A resident WASM memory that any of our builds can run in. */
interface SharedMemory extends Resident {
  readonly memory: WebAssembly.Memory;
}

function sharedMemory(): SharedMemory {
  const memory = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES });
  return {
    kind: SHARED_MEMORY,
    memory,
    // Never set: an exception leaves only the instance half-way, and the instance is not reused.
    dirty: false,
    bytes: () => memory.buffer.byteLength,
    // A fresh instance's data segments are written at instantiation, and everything else
    // (its heap, stack, zero-initialised statics) must read as zero, as in a new memory.
    reset() {
      new Uint8Array(memory.buffer).fill(0);
      return true;
    },
  };
}

/**
 * An instance of `module`, run by its own `_initialize`, in a memory for the running job
 * (codecs/resident: one lent to it, or a fresh one). `env`: the module's own imports besides the
 * standard ones (giflib's `js_read`).
 */
export function instantiateStandalone<E extends StandaloneExports>(module: WebAssembly.Module, env: Record<string, (...args: never[]) => unknown> = {}): E {
  if (kindOf(module) !== SHARED_MEMORY) throw new Error("a codec module that defines its own memory: rebuild it with native/build.sh (IMPORTED_MEMORY)");
  const { memory } = acquire(module, sharedMemory);
  const view = () => new DataView(memory.buffer);
  const imports = {
    env: {
      ...env,
      memory,
      // The glue's error path: never returns; the exception unwinds the WASM frames.
      js_throw(ptr: number): never {
        const bytes = new Uint8Array(memory.buffer);
        let end = ptr;
        while (end < bytes.length && bytes[end] !== 0) end++;
        throw new CodecError(new TextDecoder().decode(bytes.subarray(ptr, end)));
      },
      emscripten_notify_memory_growth() {},
      // The high half of an i64 returned to JS (emscripten's legalisation); nothing reads it.
      setTempRet0() {},
    },
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
  const exports = instance.exports as unknown as Record<string, unknown> & { _initialize(): void };
  exports._initialize();
  return { ...exports, memory } as unknown as E;
}

/** Copies `bytes` into the instance's memory; returns the pointer. */
export function copyIn(e: StandaloneExports, bytes: Uint8Array): number {
  const ptr = e.malloc(bytes.byteLength);
  if (!ptr) throw new CodecError("out of memory");
  new Uint8Array(e.memory.buffer, ptr, bytes.byteLength).set(bytes);
  return ptr;
}
