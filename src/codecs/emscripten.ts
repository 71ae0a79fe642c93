/**
 * @module codecs/emscripten
 * Instances of the emscripten-built codecs with JS glue (libavif's decoder, @jsquash/avif). Each
 * is fresh per job and owns its memory (the whole decoded image): it runs for AVIF sources only.
 * Every encoder is one of our own builds, run in the job's shared memory (codecs/standalone).
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

/** The memory bookkeeping a codec call reports to its job (formats/spec CodecUsage). */
interface Usage {
  note(wasm: number, js?: number): void;
  retire(wasm: number): void;
}

interface DecoderModule extends EmscriptenModule {
  decode(data: ArrayBuffer, ...args: unknown[]): { data: ArrayLike<number>; width: number; height: number } | null;
}

/**
 * A whole-image decode by a fresh instance (`args`: the embind `decode`'s extra arguments, whose
 * count it checks). The RGBA copy is made while the instance is still alive, so both count.
 */
export async function decodeOnce(factory: unknown, wasm: WebAssembly.Module, bytes: ArrayBuffer, args: unknown[], usage: Usage): Promise<{ data: Uint8ClampedArray; width: number; height: number }> {
  const mod = await instantiate<DecoderModule>(factory, wasm);
  let decoded = 0;
  try {
    const out = mod.decode(bytes, ...args);
    if (!out) throw new Error("decoder returned nothing");
    if (!(out.data instanceof Uint8ClampedArray)) throw new Error("decoder returned a non-8-bit image");
    decoded = out.data.byteLength;
    return { data: out.data, width: out.width, height: out.height };
  } finally {
    usage.note(memoryBytes(mod), decoded);
    usage.retire(memoryBytes(mod));
  }
}
