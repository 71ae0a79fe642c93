/**
 * @module codecs/av1seq
 * Animated AVIF: an AV1 image sequence (AVIF 1.1 section 7, `avis`) coded frame by frame by our
 * libaom build (native/av1seq/), with inter prediction between frames, in a file this module
 * writes: `ftyp` avis, a `meta` whose primary item is the first frame (so still-only decoders
 * show it), and a `moov` with one `pict` track whose samples are the frames (ISO/IEC 14496-12
 * sample tables; AV1-ISOBMFF for `av01`/`av1C`). Only the coded frames are kept, a few KiB each;
 * the encoder holds its reference frames, never the animation. Transparency is a second,
 * auxiliary track (AVIF 1.1 7.2/7.3): a monochrome AV1 sequence of the alpha plane, referring to
 * the colour track by `auxl`, its sample entry naming the alpha URN in `auxi` (how libavif
 * writes it, and what our decoder and browsers read), and the first frame's alpha as an
 * auxiliary item of the `meta`'s primary item. An animation that turns out fully opaque is
 * written without it.
 *
 * The same build codes stills in libaom's all-intra mode (`av1StillCoder`, for codecs/avif's
 * stills and grid tiles).
 */
import { wasmModules } from "../../wasm/modules";
import type { AnimationEncoder } from "./animation";
import { ALPHA_AUX_TYPE, ascii, av1Config, box, fields, fullBox, imageMeta, NCLX_SRGB } from "./boxes";
import { CodecError, instantiateStandalone, type StandaloneExports } from "./standalone";

interface SeqExports extends StandaloneExports {
  seq_new(width: number, height: number, quantizer: number, speed: number, keyframes: number, alphaQuantizer: number, still: number): number;
  seq_canvas(s: number): number;
  seq_add(s: number, durationMs: number): void;
  seq_data(s: number, alpha: number): number;
  seq_size(s: number, alpha: number): number;
  seq_key(s: number, alpha: number): number;
  seq_translucent(s: number): number;
  seq_header(s: number, alpha: number, len: number): number;
  seq_free(s: number): void;
}

/** libavif's mapping of quality 0-100 to libaom's quantizer 0-63 (avifQualityToQuantizer). */
export const quantizerOf = (quality: number) => Math.floor(((100 - quality) * 63 + 50) / 100);

/** libaom's cpu-used in its real-time mode (sequences) goes to 10. */
const MAX_SPEED = 10;

/** A key frame at least this often, so a player can start again without decoding the whole past. */
const KEYFRAME_INTERVAL = 120;

/** One track's coded frames: AV1 samples, the 1-based numbers of its key frames, its sequence header. */
interface TrackData {
  samples: Uint8Array[];
  keys: number[];
  sequenceHeader: Uint8Array;
}

/**
 * `loop`: plays (WebP ANIM semantics), 0 forever. `quality` and `speed` as for stills
 * (@jsquash/avif's quality and cpu-used). `alpha`: the canvases may hold transparency, coded
 * as an alpha track at the colour's quantizer.
 */
export function avifSequenceEncoder(width: number, height: number, loop: number, opts: { quality: number; speed: number; alpha?: boolean }): AnimationEncoder {
  const e = instantiateStandalone<SeqExports>(wasmModules.av1seq);
  const quantizer = quantizerOf(opts.quality);
  const s = e.seq_new(width, height, quantizer, Math.min(opts.speed, MAX_SPEED), KEYFRAME_INTERVAL, opts.alpha ? quantizer : -1, 0);
  const tracks = (opts.alpha ? [0, 1] : [0]).map(() => ({ samples: [] as Uint8Array[], keys: [] as number[] }));
  const durations: number[] = [];
  let codedBytes = 0;
  let closed = false;
  const close = () => {
    if (!closed) e.seq_free(s);
    closed = true;
  };
  return {
    canvas: () => new Uint8Array(e.memory.buffer, e.seq_canvas(s), width * height * 4),
    add(durationMs) {
      // The container's timescale is milliseconds; a frame shows for at least one tick.
      const d = Math.max(1, Math.round(durationMs));
      e.seq_add(s, d);
      tracks.forEach((t, alpha) => {
        const n = e.seq_size(s, alpha);
        if (n <= 0) throw new CodecError("animated AVIF encode failed: a frame came out empty");
        t.samples.push(new Uint8Array(e.memory.buffer, e.seq_data(s, alpha), n).slice());
        if (e.seq_key(s, alpha)) t.keys.push(t.samples.length);
        codedBytes += n;
      });
      durations.push(d);
    },
    finish() {
      if (!durations.length) throw new CodecError("animated AVIF encode failed: no frames");
      const lenPtr = e.malloc(4);
      const coded: TrackData[] = tracks.map((t, alpha) => {
        if (t.keys[0] !== 1) throw new CodecError("animated AVIF encode failed: the first frame is not a key frame");
        const at = e.seq_header(s, alpha, lenPtr);
        const len = new DataView(e.memory.buffer).getUint32(lenPtr, true);
        return { ...t, sequenceHeader: new Uint8Array(e.memory.buffer, at, len).slice() };
      });
      // Every frame fully opaque after all: the alpha track would only cost bytes.
      const [color, alpha] = coded;
      return sequenceFile(width, height, loop, durations, color, alpha && e.seq_translucent(s) ? alpha : undefined);
    },
    get memoryBytes() {
      return e.memory.buffer.byteLength + codedBytes;
    },
    close,
  };
}

/** One coded AV1 image: its OBUs (no temporal delimiter) and its `av1C` box. */
export interface CodedAv1 {
  data: Uint8Array;
  av1C: Uint8Array;
}

/** libaom's all-intra mode takes cpu-used 0-9. */
const MAX_STILL_SPEED = 9;

/**
 * Still images coded one at a time by one instance of our libaom build in all-intra mode, set
 * as libavif sets it for a single image (native/av1seq/glue.c), so the bitstream is the one
 * @jsquash/avif would write at the same quality and speed, from libaom's x86 SIMD kernels
 * compiled to WASM SIMD (native/build.sh) instead of its portable C: measured in Node on an
 * 800x533 photo at q64 cpu-used 8, 135-148 ms against @jsquash/avif's 298-338 ms, 14.3 MiB of
 * memory against 23.1, 16.8 KB against 17.1. `quality`: AVIF quality 0-100 (libavif's
 * mapping to a quantizer, the alpha image's too); `speed`: cpu-used.
 */
export function av1StillCoder(opts: { quality: number; speed: number }) {
  const e = instantiateStandalone<SeqExports>(wasmModules.av1seq);
  const quantizer = quantizerOf(opts.quality);
  const speed = Math.min(opts.speed, MAX_STILL_SPEED);
  return {
    /** Codes `rgba` (`width` x `height`); its alpha as an alpha image when `alpha`. */
    code(rgba: Uint8Array, width: number, height: number, alpha: boolean): { color: CodedAv1; alpha?: CodedAv1 } {
      const s = e.seq_new(width, height, quantizer, speed, 0, alpha ? quantizer : -1, 1);
      if (!s) throw new CodecError("avif encode failed: encoder not created");
      try {
        new Uint8Array(e.memory.buffer, e.seq_canvas(s), width * height * 4).set(rgba.subarray(0, width * height * 4));
        e.seq_add(s, 1);
        const lenPtr = e.malloc(4);
        const take = (track: number): CodedAv1 => {
          const n = e.seq_size(s, track);
          if (n <= 0 || !e.seq_key(s, track)) throw new CodecError("avif encode failed: no key frame came out");
          // A copy: the next call reuses the buffer (the sequence header below, then the next image).
          const data = new Uint8Array(e.memory.buffer, e.seq_data(s, track), n).slice();
          const at = e.seq_header(s, track, lenPtr);
          const header = new Uint8Array(e.memory.buffer, at, new DataView(e.memory.buffer).getUint32(lenPtr, true));
          return { data, av1C: av1Config(header, track === 1) };
        };
        const coded = { color: take(0), alpha: alpha ? take(1) : undefined };
        e.free(lenPtr);
        return coded;
      } finally {
        e.seq_free(s);
      }
    },
    /** The instance's memory now (it never shrinks: the high-water mark of every image so far). */
    get memoryBytes() {
      return e.memory.buffer.byteLength;
    },
  };
}

/** The unity matrix of mvhd and tkhd (14496-12 8.2.2, 8.3.2): 16.16 and 2.30 fixed point. */
const MATRIX = fields([0x00010000, 4], [0, 4], [0, 4], [0, 4], [0x00010000, 4], [0, 4], [0, 4], [0, 4], [0x40000000, 4]);

/**
 * A 64-bit duration (mvhd and tkhd version 1): all ones is "indefinite" (14496-12 8.2.2.3).
 * Version 0's 32-bit all-ones is read by some libavif versions as a number (Chromium counted
 * 7.4 million plays of a 580 ms animation), so version 1 is written, as libavif itself does.
 */
const u64 = (n: number | "indefinite"): [number, 4][] => (n === "indefinite" ? [[0xffffffff, 4], [0xffffffff, 4]] : [[Math.floor(n / 2 ** 32), 4], [n % 2 ** 32, 4]]);

function sequenceFile(width: number, height: number, loop: number, durations: number[], color: TrackData, alpha: TrackData | undefined): ArrayBuffer {
  const configOf = (t: TrackData, monochrome: boolean) => av1Config(t.sequenceHeader, monochrome);
  const av1C = configOf(color, false);
  const alphaAv1C = alpha && configOf(alpha, true);
  const mediaDuration = durations.reduce((a, b) => a + b, 0);
  // Plays: the edit list repeats the whole track (14496-12 8.6.6, flags 1); the track's
  // duration is every play, or indefinite (AVIF 1.1 7.3: how players learn the repetition).
  const shown = loop === 0 ? "indefinite" : mediaDuration * loop;
  const ftyp = box("ftyp", ascii("avis"), fields([0, 4]), ascii("avif"), ascii("avis"), ascii("msf1"), ascii("iso8"), ascii("mif1"), ascii("miaf"), ascii("MA1B"));
  const bytesOf = (t: TrackData) => t.samples.reduce((a, x) => a + x.byteLength, 0);

  // The meta's primary item is the first colour frame, with the first alpha frame as its
  // auxiliary image (codecs/boxes imageMeta), so still-only decoders show the first frame.
  const metaFor = (colorAt: number, alphaAt: number) =>
    imageMeta(width, height, { av1C, at: colorAt, size: color.samples[0].byteLength }, alpha && alphaAv1C ? { av1C: alphaAv1C, at: alphaAt, size: alpha.samples[0].byteLength } : undefined);

  // Version 1: 64-bit creation and modification times and duration.
  const mvhd = fullBox("mvhd", 1, 0, fields(...u64(0), ...u64(0), [1000, 4], ...u64(shown), [0x00010000, 4], [0x0100, 2], [0, 2], [0, 4], [0, 4]), MATRIX, new Uint8Array(24), fields([alpha ? 3 : 2, 4]));
  const trakFor = (id: number, t: TrackData, config: Uint8Array, firstSample: number, isAlpha: boolean) => {
    // flags 3: track enabled, in the presentation.
    const tkhd = fullBox("tkhd", 1, 3, fields(...u64(0), ...u64(0), [id, 4], [0, 4], ...u64(shown), [0, 4], [0, 4], [0, 2], [0, 2], [0, 2], [0, 2]), MATRIX, fields([width * 65536, 4], [height * 65536, 4]));
    // The alpha track refers to the colour track it belongs to (14496-12 8.3.3, AVIF 1.1 7.3).
    const tref = isAlpha ? [box("tref", box("auxl", fields([1, 4])))] : [];
    const elst = fullBox("elst", 0, 1, fields([1, 4], [mediaDuration, 4], [0, 4], [1, 2], [0, 2]));
    // Language "und" packed as three 5-bit letters (14496-12 8.4.2.3).
    const mdhd = fullBox("mdhd", 0, 0, fields([0, 4], [0, 4], [1000, 4], [mediaDuration, 4], [0x55c4, 2], [0, 2]));
    // Handler 'auxv' for an auxiliary video track (14496-12 12.1.2, AVIF 1.1 7.3).
    const hdlr = fullBox("hdlr", 0, 0, fields([0, 4]), ascii(isAlpha ? "auxv" : "pict"), fields([0, 4], [0, 4], [0, 4]), new Uint8Array([0]));
    const vmhd = fullBox("vmhd", 0, 1, fields([0, 2], [0, 2], [0, 2], [0, 2]));
    const dinf = box("dinf", fullBox("dref", 0, 0, fields([1, 4]), fullBox("url ", 0, 1)));
    // VisualSampleEntry (14496-12 12.1.3) 'av01', then av1C, colr (colour) and ccst (AVIF 1.1
    // 7.2: intra prediction used, up to 15 reference pictures, not all of them intra); an alpha
    // track's entry names its auxiliary type in `auxi` (23002-5 / AVIF 1.1 7.3).
    const av01 = box(
      "av01",
      new Uint8Array(6),
      fields([1, 2], [0, 2], [0, 2], [0, 4], [0, 4], [0, 4], [width, 2], [height, 2], [0x00480000, 4], [0x00480000, 4], [0, 4], [1, 2]),
      new Uint8Array(32),
      fields([0x0018, 2], [0xffff, 2]),
      config,
      ...(isAlpha ? [] : [NCLX_SRGB]),
      fullBox("ccst", 0, 0, fields([0x7c000000, 4])),
      ...(isAlpha ? [fullBox("auxi", 0, 0, ALPHA_AUX_TYPE)] : []),
    );
    const stsd = fullBox("stsd", 0, 0, fields([1, 4]), av01);
    // Runs of equal durations.
    const runs: [number, number][] = [];
    for (const d of durations) {
      const last = runs[runs.length - 1];
      if (last && last[1] === d) last[0]++;
      else runs.push([1, d]);
    }
    const stts = fullBox("stts", 0, 0, fields([runs.length, 4]), ...runs.map(([n, d]) => fields([n, 4], [d, 4])));
    const stss = fullBox("stss", 0, 0, fields([t.keys.length, 4]), ...t.keys.map((k) => fields([k, 4])));
    // One chunk holding every sample of the track.
    const stsc = fullBox("stsc", 0, 0, fields([1, 4], [1, 4], [t.samples.length, 4], [1, 4]));
    const stsz = fullBox("stsz", 0, 0, fields([0, 4], [t.samples.length, 4]), ...t.samples.map((x) => fields([x.byteLength, 4])));
    const stco = fullBox("stco", 0, 0, fields([1, 4], [firstSample, 4]));
    const stbl = box("stbl", stsd, stts, stss, stsc, stsz, stco);
    return box("trak", tkhd, ...tref, box("edts", elst), box("mdia", mdhd, hdlr, box("minf", vmhd, dinf, stbl)));
  };
  const moovFor = (colorAt: number, alphaAt: number) =>
    box("moov", mvhd, trakFor(1, color, av1C, colorAt, false), ...(alpha && alphaAv1C ? [trakFor(2, alpha, alphaAv1C, alphaAt, true)] : []));

  // mdat: every colour sample, then every alpha sample. Offsets into it are known once meta's
  // and moov's sizes are (they do not depend on the offsets' values).
  const head = ftyp.byteLength + metaFor(0, 0).byteLength + moovFor(0, 0).byteLength;
  const colorAt = head + 8;
  const alphaAt = colorAt + bytesOf(color);
  const meta = metaFor(colorAt, alphaAt);
  const moov = moovFor(colorAt, alphaAt);
  const mdat = box("mdat", ...color.samples, ...(alpha?.samples ?? []));
  const out = new Uint8Array(head + mdat.byteLength);
  out.set(ftyp, 0);
  out.set(meta, ftyp.byteLength);
  out.set(moov, ftyp.byteLength + meta.byteLength);
  out.set(mdat, head);
  return out.buffer;
}
