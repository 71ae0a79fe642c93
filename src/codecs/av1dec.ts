/**
 * @module codecs/av1dec
 * Animated AVIF sources frame by frame: the image sequence's sample tables are read here
 * (formats/isobmff `imageSequence`, handed over by formats/avif), each sample goes to our libaom decoder build
 * (native/av1dec/), and the decoded picture, with the alpha track's as its alpha, becomes the
 * RGBA canvas in the same WASM memory. AV1 frames are whole pictures (no disposal or blending
 * as in GIF): the canvas is the frame. Only libaom's reference frames, one sample and one
 * canvas are held, never the animation.
 */
import { wasmModules } from "../../wasm/modules";
import { av1SequenceSize } from "../bitstream";
import type { CodecUsage, Pixels } from "./index";
import type { AnimationDecoder } from "./animation";
import { CodecError, instantiateStandalone, type StandaloneExports } from "./standalone";

interface DecExports extends StandaloneExports {
  dec_new(): number;
  dec_buffer(d: number, len: number): number;
  dec_decode(d: number, len: number): number;
  dec_width(d: number): number;
  dec_height(d: number): number;
  dec_rgba(color: number, alpha: number, out: number, width: number, height: number, matrix: number, full: number): number;
  dec_free(d: number): void;
}

/** What a coded picture may add to the track's size: alignment to coding blocks (as for items). */
const CODED_SLACK = 64;

/** One coded sample of a track: where it lies in the file. */
export interface SequenceSample {
  offset: number;
  size: number;
}

/**
 * An AV1 image sequence as its container declares it (formats/isobmff `imageSequence` reads it):
 * the colour track's size, samples and durations, the alpha track's samples, the loop count and
 * the H.273 matrix and range of the sample entry (-1: the bitstream decides).
 */
export interface Av1Sequence {
  /** The colour track's sample entry size (VisualSampleEntry width and height). */
  width: number;
  height: number;
  samples: SequenceSample[];
  durationsMs: number[];
  alpha?: SequenceSample[];
  /** Plays (WebP ANIM semantics): 0 forever. */
  loop: number;
  /** H.273 MatrixCoefficients and full-range flag from the sample entry's `colr` nclx, or -1 (the bitstream decides). */
  matrix: number;
  fullRange: number;
}

export function openAvifSequence(bytes: ArrayBuffer, seq: Av1Sequence | null): AnimationDecoder {
  const file = new Uint8Array(bytes);
  if (!seq) throw new CodecError("not an AV1 image sequence (no av01 picture track)");
  const { width, height, samples, alpha, durationsMs } = seq;
  if (!width || !height) throw new CodecError("image sequence: no size in its sample entry");
  for (const s of [...samples, ...(alpha ?? [])]) {
    if (s.offset + s.size > file.length) throw new CodecError("image sequence: a sample lies past the end of the file (truncated)");
  }
  const e = instantiateStandalone<DecExports>(wasmModules.av1dec);
  const color = e.dec_new();
  const alphaDec = alpha ? e.dec_new() : 0;
  // Made at the first frame: the caller compares this decoder's size with the header's first,
  // so a sample entry that lies about its size allocates nothing.
  let canvas = 0;
  // Feeds one sample; whether it showed a picture. libaom allocates its frame buffers from a
  // sequence header's maximum frame size (AV1 5.5.1), so a sample carrying one larger than the
  // track is refused before libaom sees it, as items are (formats/isobmff checkCodedSizes).
  const decode = (d: number, s: SequenceSample) => {
    let coded;
    try {
      coded = av1SequenceSize(file, s.offset, s.offset + s.size);
    } catch (err) {
      throw new CodecError(`image sequence: a sample's OBUs are malformed (${(err as Error).message})`);
    }
    if (coded && (coded.width > width + CODED_SLACK || coded.height > height + CODED_SLACK)) {
      throw new CodecError(`image sequence: a sample codes up to ${coded.width}x${coded.height} where the track is ${width}x${height}`);
    }
    const at = e.dec_buffer(d, s.size);
    new Uint8Array(e.memory.buffer, at, s.size).set(file.subarray(s.offset, s.offset + s.size));
    return e.dec_decode(d, s.size) === 1;
  };
  let index = 0;
  let closed = false;
  const close = () => {
    if (!closed) {
      e.dec_free(color);
      if (alphaDec) e.dec_free(alphaDec);
    }
    closed = true;
  };
  return {
    width,
    height,
    loop: seq.loop,
    next() {
      if (closed) return null;
      try {
        // A sample that shows no picture (a frame only kept for reference) adds its time to the next shown one.
        let durationMs = 0;
        while (index < samples.length) {
          const i = index++;
          durationMs += durationsMs[i];
          const shown = decode(color, samples[i]);
          const shownAlpha = alpha ? decode(alphaDec, alpha[i]) : shown;
          if (shown !== shownAlpha) throw new CodecError(`image sequence: sample ${i + 1} shows a picture on one track only`);
          if (!shown) continue;
          if (!canvas) {
            canvas = e.malloc(width * height * 4);
            if (!canvas) throw new CodecError("av1 decode failed: out of memory");
          }
          if (!e.dec_rgba(color, alphaDec, canvas, width, height, seq.matrix, seq.fullRange)) {
            throw new CodecError(`image sequence: sample ${i + 1} decodes to ${e.dec_width(color)}x${e.dec_height(color)}, not the track's ${width}x${height}`);
          }
          return { canvas: new Uint8Array(e.memory.buffer, canvas, width * height * 4), durationMs };
        }
      } catch (err) {
        // libaom's state after an error is not to be trusted: the instance goes with it.
        closed = true;
        throw err;
      }
      close();
      return null;
    },
    get memoryBytes() {
      return e.memory.buffer.byteLength;
    },
    jsBytes: 0,
    close,
  };
}

/**
 * The first frame of an AVIF sequence as a still: what a client that decodes no animated
 * format gets (as for GIF and WebP animations). libavif 0.11 (@jsquash) refuses some
 * sequences browsers play (one with an audio track: "decoder returned nothing").
 */
export function avifSequenceStill(bytes: ArrayBuffer, seq: Av1Sequence | null, usage: CodecUsage): Pixels {
  const dec = openAvifSequence(bytes, seq);
  try {
    const frame = dec.next();
    if (!frame) throw new CodecError("image sequence: no frame");
    const data = new Uint8ClampedArray(frame.canvas);
    usage.note(dec.memoryBytes, data.byteLength);
    usage.retire(dec.memoryBytes);
    return { data, width: dec.width, height: dec.height };
  } finally {
    dec.close();
  }
}
