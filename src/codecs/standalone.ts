/**
 * @module codecs/standalone
 * Instances of our own codec builds (codecs/<name>/, `npm run build:codecs`): emscripten
 * `STANDALONE_WASM` modules with no generated JS glue, so their imports are the few below. A
 * fresh instance per job, dropped after it: a WASM memory never shrinks.
 */

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

/** `env`: the module's own imports besides these (giflib's `js_read`). */
export function instantiateStandalone<E extends StandaloneExports>(module: WebAssembly.Module, env: Record<string, (...args: never[]) => unknown> = {}): E {
  let memory: WebAssembly.Memory | undefined;
  const view = () => new DataView(memory!.buffer);
  const imports = {
    env: {
      // The glue's error path: never returns, the exception unwinds the WASM frames, and the
      // caller drops the instance.
      js_throw(ptr: number): never {
        const bytes = new Uint8Array(memory!.buffer);
        let end = ptr;
        while (end < bytes.length && bytes[end] !== 0) end++;
        throw new CodecError(new TextDecoder().decode(bytes.subarray(ptr, end)));
      },
      emscripten_notify_memory_growth() {},
      // The high half of an i64 returned to JS (emscripten's legalisation); nothing reads it.
      setTempRet0() {},
      ...env,
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
  const exports = instance.exports as unknown as E;
  memory = exports.memory;
  exports._initialize();
  return exports;
}

/** Copies `bytes` into the instance's memory; returns the pointer. */
export function copyIn(e: StandaloneExports, bytes: Uint8Array): number {
  const ptr = e.malloc(bytes.byteLength);
  if (!ptr) throw new CodecError("out of memory");
  new Uint8Array(e.memory.buffer, ptr, bytes.byteLength).set(bytes);
  return ptr;
}
