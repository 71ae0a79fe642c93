/**
 * @module codecs
 * The WASM codecs' common types. Codecs know nothing of HTTP, R2, config or the format registry:
 * they take bytes or pixels and options, and report the memory they used through `CodecUsage`.
 * Which codec serves a format is the format module's business (formats/<name>.ts `codecs`);
 * a job's session drives them (produce/codec-session).
 */

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

/** An animation's encode settings: a still's, plus whether to code losslessly and keep transparency. */
export type AnimationOptions = EncodeOptions & { lossless?: boolean; alpha?: boolean };

/** What a codec call reports of its memory to its job (produce/codec-session `CodecSession`). */
export interface CodecUsage {
  /** A moment of the call: `wasm` bytes of live codec memory and `js` bytes of buffers besides. */
  note(wasm: number, js?: number): void;
  /** A codec memory the call is done with (counted until the job ends). */
  retire(wasm: number): void;
  /** A module-wide codec memory that outlives the job. */
  persist(wasm: number): void;
}
