/**
 * @module formats/spec
 * What a format module (formats/<name>.ts) declares: its identity and media types, its magic
 * bytes and header probe, its codecs and what they cost. The registry (formats/index) lists
 * the modules; nothing else switches on a format's name.
 */
import type { AnimationOptions, CodecUsage, EncodeOptions, Pixels } from "../codecs";
import type { AnimationDecoder, AnimationEncoder } from "../codecs/animation";
import type { InkConversion, RowDecoder, RowEncoder } from "../codecs/rows";
import type { FormatName } from "./id";
import type { ColourTag, ImageHeader, SequenceShape } from "./probe";

export type { AnimationOptions, CodecUsage } from "../codecs";
export type { FormatId } from "./id";

/** Its name facts (formats/id: id, extensions, canEncode, maxSpeed) and everything else. */
export interface FormatSpec extends FormatName {
  /** The media type sent in Content-Type and matched in Accept. */
  readonly mime: string;
  /** Other media types clients use for the same format (matched in Accept only). */
  readonly mimeAliases: readonly string[];
  readonly supportsAlpha: boolean;
  /**
   * Every image client decodes it (JPEG, PNG). A URL in any other format matched only through
   * a wildcard (`image/*` covers HEIC in Chrome's Accept) is not a promise the client decodes it.
   */
  readonly universal: boolean;
  /** A WASM decoder is bundled. */
  readonly canDecode: boolean;
  /**
   * The decoder streams rows (our own builds: codecs/rows.ts), at these downscale factors:
   * libjpeg's DCT scales 1/1 to 1/8 for JPEG, libwebp's rescaler at the same steps for WebP,
   * full size for HEIC's tiles and PNG's rows. Absent: the decoder
   * only gives whole images.
   */
  readonly rowScales?: readonly number[];
  /**
   * When several full-size originals of one stem exist, the one to transcode from: lower is
   * better. Lossless first, then the formats whose decoders are fastest and most tolerant.
   */
  readonly sourceRank: number;
  /** What the file says about its colours (an ICC profile or H.273 code points), read without decoding. */
  colourTag?(b: Uint8Array): ColourTag | null;
  /** Magic bytes: whether `b` (the file's first bytes) is this format. */
  sniff(b: Uint8Array): boolean;
  /**
   * The header probe: size, alpha, animation and transforms read without decoding (the guard
   * against decompression bombs). Throws HeaderError when the header is truncated or inconsistent.
   */
  parseHeader(b: Uint8Array): ImageHeader;
  /** The format's codecs (codecs/ implements them; CodecSession drives them). */
  readonly codecs: FormatCodecs;
  /** What its codecs cost, for produce/budget's predictions. */
  readonly cost: FormatCost;
}

/**
 * The codec memory a whole-image codec call reports to its job (CodecSession): `note` a moment
 * of live WASM and JS bytes, `retire` an instance the job is done with, `persist` a module-wide
 * instance that outlives the job.
 */
export interface FormatCodecs {
  /**
   * A decoder handing over rows (formats with `rowScales`), at 1/`denom` scale; `expect` is
   * the size the header declared, which the codec's own headers must match.
   */
  rows?(bytes: ArrayBuffer, denom: number, expect: { width: number; height: number } | null, cmyk?: InkConversion): RowDecoder | Promise<RowDecoder>;
  /** A whole-image decoder, for formats without a row decoder. */
  decode?(bytes: ArrayBuffer, usage: CodecUsage): Promise<Pixels>;
  /** A whole-image encoder. */
  encode?(pixels: Pixels, opts: EncodeOptions, usage: CodecUsage): Promise<ArrayBuffer>;
  /**
   * A cheaper stand-in for `encode` and `decode` when per-image quality (produce/perceptual)
   * tries qualities on a sample of an opaque image: the coded bits of an encode at `opts`, and
   * those decoded back (`width` x `height`), each its own codec call. Absent: the format's own
   * encoder and decoder.
   */
  trial?: {
    encode(pixels: Pixels, opts: EncodeOptions, usage: CodecUsage): ArrayBuffer;
    decode(coded: ArrayBuffer, width: number, height: number, usage: CodecUsage): Pixels;
  };
  /**
   * An encoder taking rows (codecs/rows RowEncoder), for outputs too large for whole-image
   * encoders: `takes` says whether it can write this display orientation and alpha; `small`,
   * whether it is worth using below 4 MP of output when memory is short (Production.streamsOutput).
   */
  rowEncoder?: {
    readonly small: boolean;
    takes(orientation: number, alpha: boolean): boolean;
    open(width: number, height: number, orientation: number, alpha: boolean, opts: EncodeOptions): RowEncoder | Promise<RowEncoder>;
  };
  /** An animation decoded frame by frame, each frame a composited canvas (codecs/animation). */
  frames?(bytes: ArrayBuffer): AnimationDecoder;
  /**
   * An animation encoded one canvas at a time; `animationAlpha`, whether it keeps transparency
   * (`alpha`: the canvases may show some), `animationLossless`, whether it takes `lossless` (an
   * animation needing either is not given to an encoder without).
   */
  animationEncoder?(width: number, height: number, loop: number, opts: AnimationOptions): AnimationEncoder;
  readonly animationAlpha?: boolean;
  readonly animationLossless?: boolean;
  /** The smallest output worth it: below, the format's fixed overhead outweighs what it saves. */
  readonly animationMinPixels?: number;
  /** The same with transparency, when it costs more overhead (absent: `animationMinPixels`). */
  readonly animationAlphaMinPixels?: number;
}

/** Bytes linear in pixels above an instance's initial memory. */
export interface Linear {
  /** The instance's initial memory: small images never go below it. */
  floor: number;
  base: number;
  perPixel: number;
}

export const linear = (l: Linear, pixels: number): number => Math.max(l.floor, l.base + l.perPixel * pixels);

/**
 * What a format's codecs cost (produce/budget composes them into a job): CPU in milliseconds
 * per megapixel on the reference machine (a 2-core x86 VM running workerd) for real camera
 * photos, memory in bytes, measured in workerd with the per-job instances of `codecs`.
 */
export interface FormatCost {
  /** Decoding, per megapixel decoded. */
  readonly decodeMsPerMp: number;
  /** Decode CPU a source's own structure adds, whatever the output (a JPEG's scans). */
  structureMs?(header: ImageHeader): number;
  /** Encoding at the reference speed, per megapixel of output (Infinity: not encoded). */
  readonly encodeMsPerMp: number;
  /** Encode time relative to the reference speed, by speed setting. */
  speedFactor?(speed: number): number;
  /** Peak of the whole-image encoder for an output of `pixels`, keeping transparency when `alpha`, at `speed`. */
  encodeMemory(pixels: number, alpha: boolean, speed: number): number;
  /**
   * Peak of the whole-image decoder (formats without a row decoder); `sequence` when the
   * source is an image sequence, whose still that decoder takes from its first frame.
   */
  decodeMemory?(pixels: number, sequence?: SequenceShape): number;
  /** The row decoder's WASM memory at `scaledWidth`, and the band of rows it assembles in JS. */
  streamedDecoder?(header: ImageHeader, sourceBytes: number, scaledWidth: number): { decoderBytes: number; bandBytes: number };
  /** The row encoder's memory for an output of `pixels` whose longer side is `longSide`. */
  rowEncoderMemory?(pixels: number, longSide: number, alpha: boolean, speed: number): number;
  /** The row encoder's time per megapixel at the reference speed, when it differs from `encodeMsPerMp`. */
  readonly rowEncodeMsPerMp?: number;
  /** The frame decoder's WASM memory and the JS canvases it keeps, for a canvas of `canvasPixels`. */
  frameDecoder?(sourceBytes: number, canvasPixels: number, sequence: SequenceShape): { decoderBytes: number; canvasBytes: number };
  /** Decoding (and compositing) frames, per megapixel of canvas, when it differs from GIF's 15 ms. */
  readonly frameDecodeMsPerMp?: number;
  /** The animation encoder's memory for `frames` frames of `outputPixels`, keeping transparency when `alpha`. */
  animationEncodeMemory?(outputPixels: number, frames: number, alpha: boolean): number;
  /** Encoding an animation, per megapixel of output frames at the reference speed. */
  readonly animationEncodeMsPerMp?: number;
  /** How much longer an animation with transparency takes to encode (absent: 1). */
  readonly animationAlphaCpuFactor?: number;
  /**
   * The WASM module behind each priced codec whose instances stay resident (codecs/resident):
   * the memory gate lends an idle instance of it to the next job that predicts that part, so
   * only what the instance must grow by counts. Absent: fresh instances (libheif, libavif's
   * decoder), counted whole.
   */
  readonly instances?: {
    /** The row decoder's (`streamedDecoder`), for a still or for an animation's first frame. */
    rows?(animated: boolean): WebAssembly.Module | undefined;
    /** The whole-image decoder's (`decodeMemory`), for a still or an image sequence. */
    decode?(sequence: boolean): WebAssembly.Module | undefined;
    /** The whole-image encoder's (`encodeMemory`) for an output of `pixels`. */
    encode?(pixels: number): WebAssembly.Module | undefined;
    rowEncoder?: WebAssembly.Module;
    frames?: WebAssembly.Module;
    animationEncoder?: WebAssembly.Module;
  };
}
