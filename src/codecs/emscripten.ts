/**
 * @module codecs/emscripten
 * Instances of the emscripten-built codecs with JS glue (mozjpeg, @jsquash/webp's encoder,
 * libavif's decoder). The encoders are resident (codecs/resident): an instance serves job after
 * job, since every allocation of an encode is freed when it returns. The decoder is fresh per
 * job: it runs for AVIF sources only, and its memory is the whole decoded image.
 */

import { currentScope, takeLent, type Resident } from "./resident";

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
interface EncoderModule extends EmscriptenModule {
  encode(data: BufferSource, width: number, height: number, options: object): Uint8Array | null;
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

/**
 * A whole-image encode by the instance lent to the running job, or a fresh one; the file is
 * copied out before the instance goes back (codecs/resident).
 */
export async function encodeOnce(factory: unknown, wasm: WebAssembly.Module, pixels: { data: Uint8ClampedArray; width: number; height: number }, options: object, usage: Usage): Promise<ArrayBuffer> {
  // Read before the first await: the scope is only set for a codec call's synchronous start.
  const scope = currentScope();
  const lent = scope && (takeLent(scope, wasm) as (Resident & { mod: EncoderModule }) | undefined);
  const resident = lent ?? residentOf(wasm, await instantiate<EncoderModule>(factory, wasm));
  scope?.used.add(resident);
  const mod = resident.mod;
  let encoded = 0;
  try {
    const out = mod.encode(pixels.data, pixels.width, pixels.height, options);
    if (!out) throw new Error("encoder returned nothing");
    // A copy: the view points into the instance's memory, which the next job will reuse.
    encoded = out.byteLength;
    return out.slice().buffer;
  } catch (e) {
    resident.dirty = true;
    throw e;
  } finally {
    usage.note(memoryBytes(mod), pixels.data.byteLength + encoded);
    usage.retire(memoryBytes(mod));
  }
}

function residentOf(module: WebAssembly.Module, mod: EncoderModule): Resident & { mod: EncoderModule } {
  return { kind: module, mod, dirty: false, bytes: () => memoryBytes(mod), reset: () => true };
}
