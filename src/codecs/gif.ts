/**
 * @module codecs/gif
 * GIF through our giflib build (native/gif/): read one frame at a time (the file's bytes stay
 * in JS and are pulled by the decoder), composited here on one canvas the way browsers show
 * it (GIF89a sections 20 and 23): the canvas starts transparent; a frame's pixels replace the
 * canvas's except where they are its transparent index; indices beyond the colour table are
 * opaque black; after a frame is shown its disposal applies: 0/1 leave it, 2 clears its
 * rectangle to transparent (browsers ignore the background colour), 3 restores what was under
 * it. Frames are clipped to the canvas. Only the canvas, a copy of the rectangle under a
 * disposal-3 frame and the current frame's indices are ever held.
 */
import { wasmModules } from "../../wasm/modules";
import type { AnimationDecoder, Frame } from "./animation";
import { CodecError, instantiateStandalone, type StandaloneExports } from "./standalone";

interface GifExports extends StandaloneExports {
  gif_open(): number;
  gif_width(h: number): number;
  gif_height(h: number): number;
  gif_loop(h: number): number;
  gif_error(h: number): number;
  gif_next(h: number): number;
  gif_frame_left(h: number): number;
  gif_frame_top(h: number): number;
  gif_frame_width(h: number): number;
  gif_frame_height(h: number): number;
  gif_frame_indices(h: number): number;
  gif_frame_palette(h: number): number;
  gif_frame_disposal(h: number): number;
  gif_frame_transparent(h: number): number;
  gif_frame_delay(h: number): number;
  gif_frame_row_ok(h: number, y: number): number;
  gif_close(h: number): void;
}

/** giflib's D_GIF_ERR_* codes (gif_lib.h), for messages. */
const ERRORS: Record<number, string> = {
  101: "open failed",
  102: "read failed (truncated file)",
  103: "not a GIF file",
  104: "no screen descriptor",
  105: "no image descriptor",
  106: "no colour map",
  107: "wrong record type",
  108: "data too big",
  109: "not enough memory",
  110: "close failed",
  111: "not readable",
  112: "image defect (truncated or corrupt data)",
  113: "EOF too soon (truncated file)",
};

/**
 * Browsers show a GIF delay of 10 ms or less as 100 ms (Chromium and Firefox both clamp); the
 * output keeps what the viewer saw rather than a zero-length frame.
 */
export function shownDelayMs(centiseconds: number): number {
  const ms = centiseconds * 10;
  return ms <= 10 ? 100 : ms;
}

/**
 * GIF's NETSCAPE2.0 loop count is the number of repeats after the first play (absent: play
 * once); WebP's and AVIF's count plays (0: forever), as libwebp's gif2webp translates it.
 */
export function playCount(netscapeLoop: number): number {
  if (netscapeLoop < 0) return 1;
  if (netscapeLoop === 0) return 0;
  return Math.min(65535, netscapeLoop + 1);
}

export function openGif(bytes: ArrayBuffer): AnimationDecoder {
  const src = new Uint8Array(bytes);
  let pos = 0;
  let e!: GifExports;
  e = instantiateStandalone<GifExports>(wasmModules.gif, {
    js_read(ptr: number, n: number): number {
      const take = Math.min(n, src.byteLength - pos);
      new Uint8Array(e.memory.buffer, ptr, take).set(src.subarray(pos, pos + take));
      pos += take;
      return take;
    },
  });
  const h = e.gif_open();
  if (!h) throw new CodecError("not a GIF giflib can read");
  const width = e.gif_width(h);
  const height = e.gif_height(h);
  if (!(width > 0 && height > 0)) {
    e.gif_close(h);
    throw new CodecError(`the GIF declares a ${width}x${height} canvas`);
  }
  const canvas = new Uint8Array(width * height * 4);
  // What the previous frame asked to happen after it was shown.
  let pending: { disposal: number; x0: number; y0: number; x1: number; y1: number; saved?: Uint8Array } | null = null;
  let frames = 0;
  let closed = false;
  let savedBytes = 0;

  const close = () => {
    if (!closed) e.gif_close(h);
    closed = true;
  };

  const dispose = () => {
    if (!pending) return;
    const { disposal, x0, y0, x1, y1, saved } = pending;
    const rowBytes = (x1 - x0) * 4;
    for (let y = y0; y < y1; y++) {
      const at = (y * width + x0) * 4;
      if (disposal === 2) canvas.fill(0, at, at + rowBytes);
      else if (disposal === 3 && saved) canvas.set(saved.subarray((y - y0) * rowBytes, (y - y0 + 1) * rowBytes), at);
    }
    pending = null;
  };

  return {
    width,
    height,
    get loop() {
      return playCount(e.gif_loop(h));
    },
    next(): Frame | null {
      if (closed) return null;
      const r = e.gif_next(h);
      if (r === 0) {
        close();
        if (frames === 0) throw new CodecError("the GIF has no image");
        return null;
      }
      const fh = r > 0 ? e.gif_frame_height(h) : 0;
      // A frame whose data ended early (2) counts only when every row arrived (some encoders
      // drop the last block terminator); otherwise the file is cut there. A GIF cut after some
      // frames keeps those frames (browsers show them); one cut in its first frame is broken,
      // like a truncated JPEG.
      let cut = r < 0;
      if (r === 2) for (let y = 0; y < fh && !cut; y++) cut = !e.gif_frame_row_ok(h, y);
      if (cut) {
        const code = e.gif_error(h);
        close();
        if (frames > 0 && (r === 2 || code === 102 || code === 112 || code === 113)) return null;
        throw new CodecError(`${ERRORS[code] ?? `giflib error ${code}`}${r === 2 ? " in the first frame" : ""}`);
      }
      const last = r === 2;
      dispose();
      const left = e.gif_frame_left(h);
      const top = e.gif_frame_top(h);
      const fw = e.gif_frame_width(h);
      const x0 = Math.min(left, width);
      const y0 = Math.min(top, height);
      const x1 = Math.min(left + fw, width);
      const y1 = Math.min(top + fh, height);
      const disposal = e.gif_frame_disposal(h);
      let saved: Uint8Array | undefined;
      if (disposal === 3 && x1 > x0 && y1 > y0) {
        saved = new Uint8Array((x1 - x0) * (y1 - y0) * 4);
        for (let y = y0; y < y1; y++) saved.set(canvas.subarray((y * width + x0) * 4, (y * width + x1) * 4), (y - y0) * (x1 - x0) * 4);
        savedBytes = Math.max(savedBytes, saved.byteLength);
      }
      const mem = e.memory.buffer;
      const indices = new Uint8Array(mem, e.gif_frame_indices(h), fw * fh);
      const palette = new Uint8Array(mem, e.gif_frame_palette(h), 1024);
      const transparent = e.gif_frame_transparent(h);
      for (let y = y0; y < y1; y++) {
        const row = (y - top) * fw;
        let at = (y * width + x0) * 4;
        for (let x = x0; x < x1; x++, at += 4) {
          const i = indices[row + x - left];
          if (i === transparent) continue;
          const p = i * 4;
          canvas[at] = palette[p];
          canvas[at + 1] = palette[p + 1];
          canvas[at + 2] = palette[p + 2];
          canvas[at + 3] = 255;
        }
      }
      pending = disposal === 2 || disposal === 3 ? { disposal, x0, y0, x1, y1, saved } : null;
      frames++;
      if (last) close();
      return { canvas, durationMs: shownDelayMs(e.gif_frame_delay(h)) };
    },
    get memoryBytes() {
      return e.memory.buffer.byteLength;
    },
    get jsBytes() {
      return canvas.byteLength + savedBytes;
    },
    close,
  };
}
