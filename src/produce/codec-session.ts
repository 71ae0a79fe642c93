/**
 * @module produce/codec-session
 * One job's codec work behind a per-job session: the session drives the codecs a format module
 * names (formats/<name>.ts `codecs`) and keeps the job's memory account. The codecs themselves
 * (codecs/) know nothing of the registry, HTTP, R2 or config: they take bytes or pixels and
 * options, and report the memory they used.
 *
 * Our own builds (native/jpeg, webp, webpanim, gif, av1seq, av1dec, resize), every encoder
 * among them, run in resident memories (codecs/resident): a job uses the memories the memory
 * gate lent it, or fresh ones, and gives them all back when it ends. PNG's wasm-bindgen encoder
 * keeps a single module-wide instance (it cannot be instantiated twice), so its memory is
 * persistent and counted in every job that encodes PNG.
 */
import type { AnimationDecoder, AnimationEncoder } from "../codecs/animation";
import "../codecs/image-data";
import type { AnimationOptions, CodecUsage, EncodeOptions, Pixels } from "../codecs";
import { InstanceScope, within } from "../codecs/resident";
import type { InkConversion, RowDecoder, RowEncoder } from "../codecs/rows";
import { ssimulacra2 } from "../codecs/ssim2";
import { formatSpec, type FormatId } from "../formats";

export { JPEG_ROW_ENCODE_PIXELS } from "../formats/jpeg";
export type { EncodeOptions, Pixels } from "../codecs";

/** Whether `format`'s row encoder is worth using for outputs of 4 MP or less. */
export const encodesSmallRows = (format: FormatId): boolean => formatSpec(format).codecs.rowEncoder?.small ?? false;

/** Whether `format` can be encoded from rows for an image of this orientation and alpha. */
export const encodesRows = (format: FormatId, orientation: number, alpha: boolean): boolean => formatSpec(format).codecs.rowEncoder?.takes(orientation, alpha) ?? false;

/** Whether an animated source in `format` can be decoded frame by frame. */
export const decodesFrames = (format: FormatId): boolean => formatSpec(format).codecs.frames !== undefined;
/**
 * Whether an animation of `outputPixels` per frame (with transparency when `alpha`, losslessly
 * when `lossless`) can be encoded in `format`, and is worth it at that size.
 */
export const encodesAnimation = (format: FormatId, alpha: boolean, lossless: boolean, outputPixels: number): boolean => {
  const codecs = formatSpec(format).codecs;
  const minPixels = (alpha ? codecs.animationAlphaMinPixels : undefined) ?? codecs.animationMinPixels ?? 0;
  return (
    codecs.animationEncoder !== undefined &&
    (!alpha || codecs.animationAlpha === true) &&
    (!lossless || codecs.animationLossless === true) &&
    outputPixels >= minPixels
  );
};

/**
 * One job's codec work, and the job's memory: the high-water mark of everything it holds at
 * once, WASM memories (an instance's memory only grows, so its size at a step's end is its
 * peak) plus JS buffers (the source bytes, decoded pixels, resampler state, the output).
 */
export class CodecSession implements CodecUsage {
  /**
   * @param instances the codec instances this job holds (codecs/resident): every codec call
   * below takes them from here. A second session over a job's instances keeps a memory account
   * of its own (produce/perceptual's trials, whose memories are reused call after call).
   */
  constructor(readonly instances = new InstanceScope()) {}
  /**
   * What holds the job's JS buffers (the production that owns this session), weakly: once V8
   * has collected it, so have they. The session itself is no proxy for them: it holds none,
   * and outlives them (seen alive 10 s after its production was collected).
   */
  holder?: WeakRef<object>;
  #peak = 0;
  #persistent = 0;
  #held = 0;
  #retired = 0;
  #owned = new Set<ArrayBuffer>();

  /** High-water mark of the whole job (WASM and JS), in bytes. */
  get peakBytes(): number {
    return this.#peak;
  }

  /**
   * JS buffers only this job uses (its original's bytes, its decoded and resampled pixels):
   * `free` hands their memory back when the job ends.
   */
  own(...buffers: ArrayBufferLike[]): void {
    for (const b of buffers) if (b instanceof ArrayBuffer && b.byteLength > 0) this.#owned.add(b);
  }

  /** A buffer that leaves the job (the original served as it is): never freed by it. */
  share(buffer: ArrayBufferLike): void {
    if (buffer instanceof ArrayBuffer) this.#owned.delete(buffer);
  }

  /**
   * Returns the memory of the job's own buffers at once, by detaching them (ES2024
   * `ArrayBuffer.prototype.transfer` to a length of 0): a dropped buffer is freed only when V8
   * collects it, seconds later (measured in workerd: 192 MiB of dropped ArrayBuffers still
   * resident 8 s on; detached, RSS fell by 172 MiB at once), and the memory gate would count
   * it as garbage until then. Returns the bytes freed. Called once the job has ended.
   */
  free(): number {
    let freed = 0;
    for (const b of this.#owned) {
      if (b.detached) continue;
      freed += b.byteLength;
      b.transfer(0);
    }
    this.#owned.clear();
    return freed;
  }

  /** JS buffers the job keeps for its whole length (the source bytes). */
  hold(bytes: number): void {
    this.#held += bytes;
  }

  /**
   * Memory of the codec instances this job has finished with. A dropped WASM memory is only
   * returned when V8 collects it, which a Worker cannot force (measured: 1.5-5 s later), so it
   * counts as alive until the job ends: the decoder's memory is still there while the encoder
   * runs.
   */
  get retiredBytes(): number {
    return this.#retired;
  }

  /** An instance the job is done with: see `retiredBytes`. */
  retire(wasm: number): void {
    this.#retired += wasm;
  }

  /** A module-wide codec instance the job used: it outlives the job, so it counts in every moment. */
  persist(wasm: number): void {
    this.#persistent = Math.max(this.#persistent, wasm);
  }

  /** Records a moment of the job: `wasm` bytes of live codec memory and `js` bytes of buffers besides what is held. */
  note(wasm: number, js = 0): void {
    this.#peak = Math.max(this.#peak, wasm + this.#retired + this.#persistent + this.#held + js);
  }

  /** Runs a codec call (its synchronous start, where instances are made) with this job's instances. */
  scoped<T>(fn: () => T): T {
    return within(this.instances, fn);
  }

  /**
   * A row decoder for a format whose spec has `rowScales`, at 1/`denom` scale; `expect` is the
   * size its header declared, which the codec's own headers must match.
   */
  async openRows(format: FormatId, bytes: ArrayBuffer, denom: number, expect: { width: number; height: number }, cmyk?: InkConversion): Promise<RowDecoder> {
    return normaliseThrow(`${format} decode`, async () => {
      const codecs = formatSpec(format).codecs;
      if (!codecs.rows) throw new Error(`no row decoder for ${format}`);
      const dec = await this.scoped(() => codecs.rows!(bytes, denom, expect, cmyk));
      const read = dec.read.bind(dec);
      // The codec's own errors (libjpeg's messages, libheif's codes) become ordinary ones.
      return Object.assign(dec, {
        read: async () => {
          try {
            return await read();
          } catch (e) {
            throw normalised(`${format} decode`, e);
          }
        },
      });
    });
  }

  /** A row encoder (see `encodesRows`), for `width` x `height` stored rows shown under `orientation`. */
  async rowEncoder(format: FormatId, width: number, height: number, orientation: number, alpha: boolean, opts: EncodeOptions): Promise<RowEncoder> {
    return normaliseThrow(`${format} encode`, async () => {
      const codec = formatSpec(format).codecs.rowEncoder;
      if (!codec?.takes(orientation, alpha)) throw new Error(`no row encoder for ${format} (orientation ${orientation}${alpha ? ", alpha" : ""})`);
      const enc = await this.scoped(() => codec.open(width, height, orientation, alpha, opts));
      const write = enc.write.bind(enc);
      const finish = enc.finish.bind(enc);
      // The codec's own errors become ordinary ones naming the step.
      return Object.assign(enc, {
        write: (rows: Uint8Array | Uint8ClampedArray, count: number) => {
          try {
            write(rows, count);
          } catch (e) {
            throw normalised(`${format} encode`, e);
          }
        },
        finish: () => {
          try {
            return finish();
          } catch (e) {
            throw normalised(`${format} encode`, e);
          }
        },
      });
    });
  }

  /** A frame-by-frame decoder of an animation in `format` (GIF, animated WebP). */
  openFrames(format: FormatId, bytes: ArrayBuffer): AnimationDecoder {
    const open = formatSpec(format).codecs.frames;
    if (!open) throw new Error(`no frame decoder for ${format}`);
    try {
      return this.scoped(() => open(bytes));
    } catch (e) {
      throw normalised(`${format} decode`, e);
    }
  }

  /** An encoder taking one canvas at a time, for an animation in `format`. */
  animationEncoder(format: FormatId, width: number, height: number, loop: number, opts: AnimationOptions): AnimationEncoder {
    const open = formatSpec(format).codecs.animationEncoder;
    if (!open) throw new Error(`no animation encoder for ${format}`);
    try {
      return this.scoped(() => open(width, height, loop, opts));
    } catch (e) {
      throw normalised(`${format} encode`, e);
    }
  }

  async decode(format: FormatId, bytes: ArrayBuffer): Promise<Pixels> {
    return normaliseThrow(`${format} decode`, async () => {
      const codecs = formatSpec(format).codecs;
      if (codecs.rows) {
        // Our own builds, at full size, rows gathered into one image (in stored orientation,
        // except a single coded HEIF image, which libheif decodes transformed: `oriented`).
        const dec = await this.scoped(() => codecs.rows!(bytes, 1, null));
        const data = new Uint8ClampedArray(dec.width * dec.height * 4);
        for (let y = 0, band = await dec.read(); band; y += band.rows, band = await dec.read()) data.set(band.data, y * dec.width * 4);
        this.note(dec.memoryBytes, data.byteLength + dec.jsBytes);
        this.retire(dec.memoryBytes);
        return { data, width: dec.width, height: dec.height };
      }
      if (!codecs.decode) throw new Error(`no decoder for ${format}`);
      return this.scoped(() => codecs.decode!(bytes, this));
    });
  }

  /**
   * A trial encode for per-image quality (produce/perceptual): the format's `trial` coder when
   * it has one (AVIF: the bare AV1 image), else its encoder. Only `trialDecode` reads it.
   */
  async trialEncode(format: FormatId, pixels: Pixels, opts: EncodeOptions): Promise<ArrayBuffer> {
    const trial = formatSpec(format).codecs.trial;
    if (!trial) return this.encode(format, pixels, opts);
    return normaliseThrow(`${format} encode`, async () => this.scoped(() => trial.encode(pixels, opts, this)));
  }

  /** `trialEncode`'s output decoded back to pixels (`width` x `height`). */
  async trialDecode(format: FormatId, coded: ArrayBuffer, width: number, height: number): Promise<Pixels> {
    const trial = formatSpec(format).codecs.trial;
    if (!trial) return this.decode(format, coded);
    return normaliseThrow(`${format} decode`, async () => this.scoped(() => trial.decode(coded, width, height, this)));
  }

  /** SSIMULACRA 2 of `distorted` against `reference` (codecs/ssim2). */
  score(reference: Pixels, distorted: Pixels): number {
    try {
      return this.scoped(() => ssimulacra2(reference, distorted, this));
    } catch (e) {
      throw normalised("ssimulacra2", e);
    }
  }

  async encode(format: FormatId, pixels: Pixels, opts: EncodeOptions): Promise<ArrayBuffer> {
    return normaliseThrow(`${format} encode`, async () => {
      const encode = formatSpec(format).codecs.encode;
      if (!encode) throw new Error(`no encoder for ${format}`);
      return this.scoped(() => encode(pixels, opts, this));
    });
  }
}

/**
 * The decoders throw four unrelated kinds (Error, ExitStatus, a bare Number, RuntimeError
 * "Aborted()"); all of them become an Error naming the step.
 */
async function normaliseThrow<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw normalised(what, e);
  }
}

function normalised(what: string, e: unknown): Error {
  if (e instanceof Error) return new Error(`${what} failed: ${e.message}`, { cause: e });
  const detail = typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e);
  return new Error(`${what} failed: ${detail}`, { cause: e });
}

/** Convenience for one-off work (tests, tools): a throwaway session. */
export const decode = (format: FormatId, bytes: ArrayBuffer) => new CodecSession().decode(format, bytes);
export const encode = (format: FormatId, pixels: Pixels, opts: EncodeOptions) => new CodecSession().encode(format, pixels, opts);
