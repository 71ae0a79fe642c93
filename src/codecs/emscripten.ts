/**
 * @module codecs/emscripten
 * Fresh instances of the emscripten-built codecs (mozjpeg, libwebp, libavif). A WASM memory
 * never shrinks, so one long-lived instance keeps the high-water mark of the largest image it
 * ever saw; an instance per job lets the GC return that memory once the job drops it.
 */

export interface EmscriptenModule {
  /** Emscripten refreshes this view whenever the memory grows, so it always spans all of it. */
  HEAP8: Int8Array;
}

type Factory<M> = (opts: Record<string, unknown>) => Promise<M>;

export async function instantiate<M extends EmscriptenModule>(factory: unknown, wasm: WebAssembly.Module): Promise<M> {
  return (factory as Factory<M>)({
    noInitialRun: true,
    // Workers cannot compile WASM from bytes at run time: hand over the precompiled module.
    instantiateWasm(imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance) => void) {
      const instance = new WebAssembly.Instance(wasm, imports);
      done(instance);
      return instance.exports;
    },
  });
}

export const memoryBytes = (m: EmscriptenModule): number => m.HEAP8.buffer.byteLength;
