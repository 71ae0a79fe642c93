/**
 * @module codecs/animation
 * Animations frame by frame: a decoder yields one composited canvas at a time (GIF through
 * ./gif, animated WebP through libwebp's WebPAnimDecoder), and an encoder takes one canvas at
 * a time (animated WebP through libwebp's WebPAnimEncoder, which finds the changed rectangle,
 * blending and key frames between canvases). Never every frame in memory: one canvas, the
 * encoder's previous canvases and the encoded frames so far.
 */
import { wasmModules } from "../../wasm/modules";
import { bandsOf, type RowDecoder } from "./rows";
import { CodecError, copyIn, instantiateStandalone, type StandaloneExports } from "./standalone";

/** A composited canvas (RGBA, a view valid until the next `next()`) and how long it shows. */
export interface Frame {
  canvas: Uint8Array;
  durationMs: number;
}

export interface AnimationDecoder {
  readonly width: number;
  readonly height: number;
  /** Plays (WebP ANIM semantics): 0 forever. */
  readonly loop: number;
  /** The next frame; null after the last. */
  next(): Frame | null;
  /** WASM memory held now. */
  readonly memoryBytes: number;
  /** JS buffers held besides (the canvas). */
  readonly jsBytes: number;
  close(): void;
}

interface WebpAnimExports extends StandaloneExports {
  anim_enc_new(width: number, height: number, loop: number, quality: number, method: number, lossless: number): number;
  anim_enc_canvas(e: number): number;
  anim_enc_add(e: number, timestampMs: number): number;
  anim_enc_finish(e: number, endMs: number): number;
  anim_enc_data(e: number): number;
  anim_enc_size(e: number): number;
  anim_enc_error(e: number): number;
  anim_enc_free(e: number): void;
  anim_dec_new(data: number, len: number): number;
  anim_dec_width(d: number): number;
  anim_dec_height(d: number): number;
  anim_dec_loop(d: number): number;
  anim_dec_frames(d: number): number;
  anim_dec_next(d: number): number;
  anim_dec_pixels(d: number): number;
  anim_dec_timestamp(d: number): number;
  anim_dec_free(d: number): void;
}

function cString(e: StandaloneExports, ptr: number): string {
  if (!ptr) return "";
  const bytes = new Uint8Array(e.memory.buffer);
  let end = ptr;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(ptr, end));
}

/** An animated WebP, each frame as a full canvas (libwebp applies blending and disposal). */
export function openWebpAnimation(bytes: ArrayBuffer): AnimationDecoder {
  const e = instantiateStandalone<WebpAnimExports>(wasmModules.webpAnim);
  // WebPAnimDecoder reads the file in place: it must stay in this memory while decoding.
  const src = copyIn(e, new Uint8Array(bytes));
  const d = e.anim_dec_new(src, bytes.byteLength);
  if (!d) throw new CodecError("not a WebP animation libwebp can read");
  const width = e.anim_dec_width(d);
  const height = e.anim_dec_height(d);
  let last = 0;
  let closed = false;
  const close = () => {
    if (!closed) e.anim_dec_free(d);
    closed = true;
  };
  return {
    width,
    height,
    loop: e.anim_dec_loop(d),
    next() {
      if (closed) return null;
      const r = e.anim_dec_next(d);
      if (r === 0) {
        close();
        return null;
      }
      if (r < 0) {
        close();
        throw new CodecError("animated WebP frame could not be decoded (truncated or corrupt)");
      }
      const end = e.anim_dec_timestamp(d);
      const durationMs = end - last;
      last = end;
      return { canvas: new Uint8Array(e.memory.buffer, e.anim_dec_pixels(d), width * height * 4), durationMs };
    },
    get memoryBytes() {
      return e.memory.buffer.byteLength;
    },
    jsBytes: 0,
    close,
  };
}

export interface AnimationEncoder {
  /** The canvas to fill (RGBA, width x height) before each `add`; a view valid until then. */
  canvas(): Uint8Array;
  /** Adds the canvas, shown for `durationMs`. */
  add(durationMs: number): void;
  /** The finished file. */
  finish(): ArrayBuffer;
  readonly memoryBytes: number;
  close(): void;
}

/**
 * Animated WebP (WebP container spec: VP8X with the animation flag, ANIM, ANMF frames), lossy
 * or lossless (VP8L frames, at libwebp's default effort of 75).
 */
export function webpAnimationEncoder(width: number, height: number, loop: number, quality: number, method: number, lossless = false): AnimationEncoder {
  const e = instantiateStandalone<WebpAnimExports>(wasmModules.webpAnim);
  const h = lossless ? e.anim_enc_new(width, height, loop, 75, method, 1) : e.anim_enc_new(width, height, loop, quality, method, 0);
  if (!h) throw new CodecError(`WebPAnimEncoder refused ${width}x${height}`);
  let t = 0;
  let closed = false;
  const close = () => {
    if (!closed) e.anim_enc_free(h);
    closed = true;
  };
  return {
    canvas: () => new Uint8Array(e.memory.buffer, e.anim_enc_canvas(h), width * height * 4),
    add(durationMs) {
      if (!e.anim_enc_add(h, t)) throw new CodecError(`animated WebP encode failed: ${cString(e, e.anim_enc_error(h))}`);
      t += durationMs;
    },
    finish() {
      if (!e.anim_enc_finish(h, t)) throw new CodecError(`animated WebP encode failed: ${cString(e, e.anim_enc_error(h))}`);
      const out = new Uint8Array(e.memory.buffer, e.anim_enc_data(h), e.anim_enc_size(h)).slice().buffer;
      return out;
    },
    get memoryBytes() {
      return e.memory.buffer.byteLength;
    },
    close,
  };
}

/**
 * The first frame as rows: what a client that decodes no animated format is shown (a still,
 * as Cloudflare Images' `anim=false`). The decoder is closed once the frame is read.
 */
export function firstFrame(dec: AnimationDecoder): RowDecoder {
  let frame: Frame | null;
  try {
    frame = dec.next();
    // The canvas may be a view into the decoder's memory: copied before the decoder goes.
    if (frame) frame = { canvas: frame.canvas.slice(), durationMs: frame.durationMs };
  } finally {
    dec.close();
  }
  if (!frame) throw new CodecError("the animation has no frame");
  const { width, height } = dec;
  const canvas = frame.canvas;
  return {
    width,
    height,
    read: bandsOf(() => canvas, width, height, 16),
    memoryBytes: dec.memoryBytes,
    jsBytes: dec.jsBytes + canvas.byteLength,
  };
}
