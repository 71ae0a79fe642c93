/**
 * @module codecs
 * WASM codecs behind a per-job session. Codecs know nothing of HTTP, R2 or config: they take
 * bytes or pixels and options, and report the WASM memory they used.
 *
 * JPEG is decoded by our own libjpeg-turbo build (./jpeg: scaled, streaming rows) and encoded by
 * mozjpeg; WebP is decoded by our own libwebp build (./webp: scaled by libwebp's rescaler). JPEG, WebP and AVIF get a fresh instance for every decode and encode, dropped as
 * soon as it returns, so the memory of one large job is not held by the isolate afterwards.
 * PNG is decoded in JS (./png); its wasm-bindgen encoder keeps a single module-wide instance (it
 * cannot be instantiated twice), so its memory is persistent and counted in every job that
 * encodes PNG.
 */
import avifDecFactory from "@jsquash/avif/codec/dec/avif_dec.js";
import avifEncFactory from "@jsquash/avif/codec/enc/avif_enc.js";
import { defaultOptions as avifDefaults } from "@jsquash/avif/meta.js";
import jpegEncFactory from "@jsquash/jpeg/codec/enc/mozjpeg_enc.js";
import { defaultOptions as jpegDefaults } from "@jsquash/jpeg/meta.js";
import pngEncode, { init as initPngEncode } from "@jsquash/png/encode.js";
import webpEncFactory from "@jsquash/webp/codec/enc/webp_enc_simd.js";
import { defaultOptions as webpDefaults } from "@jsquash/webp/meta.js";
import { wasmModules } from "../../wasm/modules";
import type { FormatId } from "../formats";
import { instantiate, memoryBytes, type EmscriptenModule } from "./emscripten";
import { firstFrame, openWebpAnimation, webpAnimationEncoder, type AnimationDecoder, type AnimationEncoder } from "./animation";
import { openGif } from "./gif";
import { openHeic } from "./heic";
import { BAND_ROWS, jpegRowEncoder, openJpeg } from "./jpeg";
import { openPng } from "./png";
import { avifGridEncoder } from "./avif";
import { openWebp, webpRowEncoder } from "./webp";
import type { RowDecoder, RowEncoder } from "./rows";
import "./image-data";

export interface Pixels {
  /** RGBA, 8 bits per channel, rows top to bottom. */
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

export interface EncodeOptions {
  quality: number;
  speed: number;
}

type Raw = { data: ArrayLike<number>; width: number; height: number } | null;
interface DecoderModule extends EmscriptenModule {
  decode(data: ArrayBuffer, ...args: unknown[]): Raw;
}
interface EncoderModule extends EmscriptenModule {
  encode(data: BufferSource, width: number, height: number, options: object): Uint8Array | null;
}

interface FreshCodec {
  decode?: () => Promise<DecoderModule>;
  /** Extra arguments of the embind `decode` (which checks their count). */
  decodeArgs?: unknown[];
  encode?: () => Promise<EncoderModule>;
  encodeOptions?: (o: EncodeOptions) => object;
}

/** Our own streaming decoders, for the formats whose spec lists `rowScales`. */
const ROW_DECODERS: Partial<Record<FormatId, (bytes: ArrayBuffer, denom: number, expect: { width: number; height: number } | null) => RowDecoder | Promise<RowDecoder>>> = {
  jpg: (bytes, denom) => openJpeg(bytes, denom),
  heic: (bytes, _denom, expect) => openHeic(bytes, expect),
  png: (bytes) => openPng(bytes),
  // An animation's still is its first frame (see FRAME_DECODERS).
  webp: (bytes, denom, expect) => (isAnimatedWebp(bytes) ? firstFrame(openWebpAnimation(bytes)) : openWebp(bytes, denom, expect)),
  gif: (bytes) => firstFrame(openGif(bytes)),
};

/** VP8X flags, animation bit (WebP container spec, "Extended file format"). */
function isAnimatedWebp(bytes: ArrayBuffer): boolean {
  const b = new Uint8Array(bytes, 0, Math.min(21, bytes.byteLength));
  return b.length >= 21 && String.fromCharCode(b[12], b[13], b[14], b[15]) === "VP8X" && (b[20] & 0x02) !== 0;
}

/** Animations decoded frame by frame, each frame a composited canvas (codecs/animation). */
const FRAME_DECODERS: Partial<Record<FormatId, (bytes: ArrayBuffer) => AnimationDecoder>> = {
  gif: openGif,
  webp: openWebpAnimation,
};

/** Animations encoded frame by frame: only WebP so far (an AV1 image sequence encoder is not bundled). */
const ANIMATION_ENCODERS: Partial<Record<FormatId, (width: number, height: number, loop: number, opts: EncodeOptions & { lossless?: boolean }) => AnimationEncoder>> = {
  webp: (w, h, loop, o) => webpAnimationEncoder(w, h, loop, o.quality, o.speed, o.lossless),
};

/**
 * Stills encoded from rows (codecs/rows RowEncoder), for outputs too large for whole-image
 * encoders: given the stored size, the display orientation and whether to keep alpha; null
 * when the format cannot take that shape by rows. JPEG rows cannot be turned (a file is written
 * top to bottom) and neither JPEG nor the AVIF grid keeps alpha here.
 */
/**
 * `small`: worth using below 4 MP of output when memory is short (see Production.streamsOutput).
 * libjpeg-turbo's rows cost a third more bytes than mozjpeg, so JPEG only streams large outputs.
 */
const ROW_ENCODERS: Partial<Record<FormatId, { small: boolean; takes(orientation: number, alpha: boolean): boolean; open(w: number, h: number, orientation: number, alpha: boolean, o: EncodeOptions): RowEncoder | Promise<RowEncoder> }>> = {
  // Huffman optimisation would make libjpeg keep every coefficient (43.6 MiB at 12 MP) for 1%.
  jpg: { small: false, takes: (orientation, alpha) => orientation === 1 && !alpha, open: (w, h, _o, _a, o) => jpegRowEncoder(w, h, o.quality, false) },
  webp: { small: true, takes: () => true, open: (w, h, orientation, alpha, o) => webpRowEncoder(w, h, orientation, alpha, o.quality, o.speed) },
  avif: { small: true, takes: (_orientation, alpha) => !alpha, open: (w, h, orientation, _alpha, o) => avifGridEncoder(w, h, orientation, o) },
};

/** Whether `format`'s row encoder is worth using for outputs of 4 MP or less. */
export const encodesSmallRows = (format: FormatId): boolean => ROW_ENCODERS[format]?.small ?? false;

/** Whether `format` can be encoded from rows for an image of this orientation and alpha. */
export const encodesRows = (format: FormatId, orientation: number, alpha: boolean): boolean => ROW_ENCODERS[format]?.takes(orientation, alpha) ?? false;

/** Whether an animated source in `format` can be decoded frame by frame. */
export const decodesFrames = (format: FormatId): boolean => FRAME_DECODERS[format] !== undefined;
/** Whether an animation can be encoded in `format`. */
export const encodesAnimation = (format: FormatId): boolean => ANIMATION_ENCODERS[format] !== undefined;

const FRESH: Partial<Record<FormatId, FreshCodec>> = {
  jpg: {
    encode: () => instantiate(jpegEncFactory, wasmModules.jpegEnc),
    encodeOptions: (o) => ({ ...jpegDefaults, quality: o.quality }),
  },
  webp: {
    encode: () => instantiate(webpEncFactory, wasmModules.webpEnc),
    encodeOptions: (o) => ({ ...webpDefaults, quality: o.quality, method: o.speed }),
  },
  avif: {
    decode: () => instantiate(avifDecFactory, wasmModules.avifDec),
    decodeArgs: [8],
    encode: () => instantiate(avifEncFactory, wasmModules.avifEnc),
    encodeOptions: (o) => ({ ...avifDefaults, quality: o.quality, speed: o.speed }),
  },
};

/**
 * The module-wide PNG encoder instance (wasm-bindgen glue cannot be instantiated twice), so its
 * memory persists and is counted in every job that encodes PNG. It only ever sees our own
 * output-sized pixels; decoding is ours (codecs/png), in JS.
 */
let pngExports: Promise<{ memory: WebAssembly.Memory }> | undefined;
function png(): Promise<{ memory: WebAssembly.Memory }> {
  pngExports ??= (initPngEncode(wasmModules.png) as unknown as Promise<{ memory: WebAssembly.Memory }>).catch((e) => {
    pngExports = undefined;
    throw e;
  });
  return pngExports;
}

/**
 * One job's codec work, and the job's memory: the high-water mark of everything it holds at
 * once, WASM memories (an instance's memory only grows, so its size at a step's end is its
 * peak) plus JS buffers (the source bytes, decoded pixels, resampler state, the output).
 */
export class CodecSession {
  #peak = 0;
  #persistent = 0;
  #held = 0;
  #retired = 0;

  /** High-water mark of the whole job (WASM and JS), in bytes. */
  get peakBytes(): number {
    return this.#peak;
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

  /** Records a moment of the job: `wasm` bytes of live codec memory and `js` bytes of buffers besides what is held. */
  note(wasm: number, js = 0): void {
    this.#peak = Math.max(this.#peak, wasm + this.#retired + this.#persistent + this.#held + js);
  }

  /**
   * A row decoder for a format whose spec has `rowScales`, at 1/`denom` scale; `expect` is the
   * size its header declared, which the codec's own headers must match.
   */
  async openRows(format: FormatId, bytes: ArrayBuffer, denom: number, expect: { width: number; height: number }): Promise<RowDecoder> {
    return normaliseThrow(`${format} decode`, async () => {
      const open = ROW_DECODERS[format];
      if (!open) throw new Error(`no row decoder for ${format}`);
      const dec = await open(bytes, denom, expect);
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
      const codec = ROW_ENCODERS[format];
      if (!codec?.takes(orientation, alpha)) throw new Error(`no row encoder for ${format} (orientation ${orientation}${alpha ? ", alpha" : ""})`);
      const enc = await codec.open(width, height, orientation, alpha, opts);
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
    const open = FRAME_DECODERS[format];
    if (!open) throw new Error(`no frame decoder for ${format}`);
    try {
      return open(bytes);
    } catch (e) {
      throw normalised(`${format} decode`, e);
    }
  }

  /** An encoder taking one canvas at a time, for an animation in `format`. */
  animationEncoder(format: FormatId, width: number, height: number, loop: number, opts: EncodeOptions & { lossless?: boolean }): AnimationEncoder {
    const open = ANIMATION_ENCODERS[format];
    if (!open) throw new Error(`no animation encoder for ${format}`);
    try {
      return open(width, height, loop, opts);
    } catch (e) {
      throw normalised(`${format} encode`, e);
    }
  }

  async decode(format: FormatId, bytes: ArrayBuffer): Promise<Pixels> {
    return normaliseThrow(`${format} decode`, async () => {
      const rows = ROW_DECODERS[format];
      if (rows) {
        // Our own builds, at full size, rows gathered into one image (in stored orientation,
        // except a single coded HEIF image, which libheif decodes transformed: `oriented`).
        const dec = await rows(bytes, 1, null);
        const data = new Uint8ClampedArray(dec.width * dec.height * 4);
        for (let y = 0, band = await dec.read(); band; y += band.rows, band = await dec.read()) data.set(band.data, y * dec.width * 4);
        this.note(dec.memoryBytes, data.byteLength + dec.jsBytes);
        this.retire(dec.memoryBytes);
        return { data, width: dec.width, height: dec.height };
      }
      const codec = FRESH[format];
      if (!codec?.decode) throw new Error(`no decoder for ${format}`);
      const mod = await codec.decode();
      let decoded = 0;
      try {
        const out = mod.decode(bytes, ...(codec.decodeArgs ?? []));
        if (!out) throw new Error("decoder returned nothing");
        const pixels = asPixels(out);
        decoded = pixels.data.byteLength;
        return pixels;
      } finally {
        // The RGBA copy is made while the instance is still alive.
        this.note(memoryBytes(mod), decoded);
        this.retire(memoryBytes(mod));
      }
    });
  }

  #jpegByRows(pixels: Pixels, opts: EncodeOptions): ArrayBuffer {
    // Huffman optimisation would make libjpeg keep every coefficient (43.6 MiB at 12 MP) for 1%.
    const enc = jpegRowEncoder(pixels.width, pixels.height, opts.quality, false);
    let out: ArrayBuffer | undefined;
    try {
      const stride = pixels.width * 4;
      for (let y = 0; y < pixels.height; y += BAND_ROWS) {
        const n = Math.min(BAND_ROWS, pixels.height - y);
        enc.write(pixels.data.subarray(y * stride, (y + n) * stride), n);
      }
      out = enc.finish();
      return out;
    } finally {
      this.note(enc.memoryBytes, pixels.data.byteLength + (out?.byteLength ?? 0));
      this.retire(enc.memoryBytes);
    }
  }

  async encode(format: FormatId, pixels: Pixels, opts: EncodeOptions): Promise<ArrayBuffer> {
    return normaliseThrow(`${format} encode`, async () => {
      if (format === "png") {
        const mem = (await png()).memory;
        const out = await pngEncode(pixels as unknown as Parameters<typeof pngEncode>[0]);
        this.#persistent = Math.max(this.#persistent, mem.buffer.byteLength);
        this.note(0, pixels.data.byteLength + out.byteLength);
        return out;
      }
      if (format === "jpg" && pixels.width * pixels.height > JPEG_ROW_ENCODE_PIXELS) return this.#jpegByRows(pixels, opts);
      const codec = FRESH[format];
      if (!codec?.encode || !codec.encodeOptions) throw new Error(`no encoder for ${format}`);
      const mod = await codec.encode();
      let encoded = 0;
      try {
        const out = mod.encode(pixels.data, pixels.width, pixels.height, codec.encodeOptions(opts));
        if (!out) throw new Error("encoder returned nothing");
        // A copy: the view points into the instance's memory, which is about to be dropped.
        encoded = out.byteLength;
        return out.slice().buffer;
      } finally {
        this.note(memoryBytes(mod), pixels.data.byteLength + encoded);
        this.retire(memoryBytes(mod));
      }
    });
  }
}

/**
 * Above this many output pixels JPEG is written by our libjpeg-turbo build a band at a time
 * (8.7 MiB of WASM for 12 MP) instead of mozjpeg (whole image: 199.6 MB for 12 MP). The price is
 * bytes: without mozjpeg's trellis quantisation and progressive scans the file is about a third
 * larger, so web sizes keep mozjpeg.
 */
export const JPEG_ROW_ENCODE_PIXELS = 4_000_000;

function asPixels(img: NonNullable<Raw>): Pixels {
  if (!(img.data instanceof Uint8ClampedArray)) throw new Error("decoder returned a non-8-bit image");
  return { data: img.data, width: img.width, height: img.height };
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
