/**
 * @module codecs/av1seq
 * Animated AVIF: an AV1 image sequence (AVIF 1.1 section 7, `avis`) coded frame by frame by our
 * libaom build (codecs/av1seq/), with inter prediction between frames, in a file this module
 * writes: `ftyp` avis, a `meta` whose primary item is the first frame (so still-only decoders
 * show it), and a `moov` with one `pict` track whose samples are the frames (ISO/IEC 14496-12
 * sample tables; AV1-ISOBMFF for `av01`/`av1C`). Only the coded frames are kept, a few KiB each;
 * the encoder holds its reference frames, never the animation. Transparency is a second,
 * auxiliary track (AVIF 1.1 7.2/7.3): a monochrome AV1 sequence of the alpha plane, referring to
 * the colour track by `auxl`, its sample entry naming the alpha URN in `auxi` (how libavif
 * writes it, and what our decoder and browsers read), and the first frame's alpha as an
 * auxiliary item of the `meta`'s primary item. An animation that turns out fully opaque is
 * written without it.
 */
import { wasmModules } from "../../wasm/modules";
import { av1SequenceInfo } from "../bitstream";
import { ALPHA_URN } from "../formats/isobmff";
import type { AnimationEncoder } from "./animation";
import { ascii, box, fields, fullBox } from "./avif";
import { CodecError, instantiateStandalone, type StandaloneExports } from "./standalone";

interface SeqExports extends StandaloneExports {
  seq_new(width: number, height: number, quantizer: number, speed: number, keyframes: number, alphaQuantizer: number): number;
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

/** libaom's cpu-used in its good-quality mode goes to 9. */
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
  const s = e.seq_new(width, height, quantizer, Math.min(opts.speed, MAX_SPEED), KEYFRAME_INTERVAL, opts.alpha ? quantizer : -1);
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

/** The unity matrix of mvhd and tkhd (14496-12 8.2.2, 8.3.2): 16.16 and 2.30 fixed point. */
const MATRIX = fields([0x00010000, 4], [0, 4], [0, 4], [0, 4], [0x00010000, 4], [0, 4], [0, 4], [0, 4], [0x40000000, 4]);

/**
 * A 64-bit duration (mvhd and tkhd version 1): all ones is "indefinite" (14496-12 8.2.2.3).
 * Version 0's 32-bit all-ones is read by some libavif versions as a number (Chromium counted
 * 7.4 million plays of a 580 ms animation), so version 1 is written, as libavif itself does.
 */
const u64 = (n: number | "indefinite"): [number, 4][] => (n === "indefinite" ? [[0xffffffff, 4], [0xffffffff, 4]] : [[Math.floor(n / 2 ** 32), 4], [n % 2 ** 32, 4]]);

/** The alpha plane's auxiliary type as `auxC` and `auxi` carry it: a NUL-terminated string. */
const ALPHA_AUX_TYPE = new Uint8Array([...ascii(ALPHA_URN), 0]);

function sequenceFile(width: number, height: number, loop: number, durations: number[], color: TrackData, alpha: TrackData | undefined): ArrayBuffer {
  // AV1CodecConfigurationRecord (AV1-ISOBMFF 2.3.3): marker and version 1; profile, level, tier;
  // 8-bit 4:2:0 (subsampling x and y, chroma sample position unknown), or monochrome for alpha;
  // then the sequence header.
  const configOf = (t: TrackData, monochrome: boolean) => {
    const info = av1SequenceInfo(t.sequenceHeader);
    if (!info) throw new CodecError("animated AVIF encode failed: no sequence header");
    return box("av1C", new Uint8Array([0x81, (info.profile << 5) | info.level, (info.tier << 7) | (monochrome ? 0b11100 : 0b1100), 0]), t.sequenceHeader);
  };
  const av1C = configOf(color, false);
  const alphaAv1C = alpha && configOf(alpha, true);
  // nclx: BT.709 primaries, sRGB transfer, BT.601 matrix, full range, as the encoder signals.
  const colr = box("colr", ascii("nclx"), fields([1, 2], [13, 2], [6, 2], [0x80, 1]));
  const mediaDuration = durations.reduce((a, b) => a + b, 0);
  // Plays: the edit list repeats the whole track (14496-12 8.6.6, flags 1); the track's
  // duration is every play, or indefinite (AVIF 1.1 7.3: how players learn the repetition).
  const shown = loop === 0 ? "indefinite" : mediaDuration * loop;
  const ftyp = box("ftyp", ascii("avis"), fields([0, 4]), ascii("avif"), ascii("avis"), ascii("msf1"), ascii("iso8"), ascii("mif1"), ascii("miaf"), ascii("MA1B"));
  const bytesOf = (t: TrackData) => t.samples.reduce((a, x) => a + x.byteLength, 0);

  // Item 1: the first colour frame; item 2, when there is alpha: the first alpha frame, an
  // auxiliary image of item 1 (iref auxl, auxC with the alpha URN; HEIF 6.6.2.1, AVIF 1.1 4).
  const metaFor = (colorAt: number, alphaAt: number) => {
    const hdlr = fullBox("hdlr", 0, 0, fields([0, 4]), ascii("pict"), fields([0, 4], [0, 4], [0, 4]), new Uint8Array([0]));
    const pitm = fullBox("pitm", 0, 0, fields([1, 2]));
    const items = alpha ? 2 : 1;
    const iloc = fullBox(
      "iloc",
      0,
      0,
      fields([0x44, 1], [0, 1], [items, 2]),
      fields([1, 2], [0, 2], [1, 2], [colorAt, 4], [color.samples[0].byteLength, 4]),
      ...(alpha ? [fields([2, 2], [0, 2], [1, 2], [alphaAt, 4], [alpha.samples[0].byteLength, 4])] : []),
    );
    const infe = (id: number) => fullBox("infe", 2, 0, fields([id, 2], [0, 2]), ascii("av01"), new Uint8Array([0]));
    const iinf = fullBox("iinf", 0, 0, fields([items, 2]), infe(1), ...(alpha ? [infe(2)] : []));
    // Properties: 1 ispe, 2 av1C, 3 colr, 4 pixi (3 channels); with alpha 5 av1C, 6 pixi (1), 7 auxC.
    const ispe = fullBox("ispe", 0, 0, fields([width, 4], [height, 4]));
    const ipco = box(
      "ipco",
      ispe,
      av1C,
      colr,
      fullBox("pixi", 0, 0, new Uint8Array([3, 8, 8, 8])),
      ...(alphaAv1C ? [alphaAv1C, fullBox("pixi", 0, 0, new Uint8Array([1, 8])), fullBox("auxC", 0, 0, ALPHA_AUX_TYPE)] : []),
    );
    // ipma: the 0x80 bit marks an essential property (av1C).
    const ipma = fullBox("ipma", 0, 0, fields([items, 4]), fields([1, 2], [4, 1], [1, 1], [0x80 | 2, 1], [3, 1], [4, 1]), ...(alpha ? [fields([2, 2], [4, 1], [1, 1], [0x80 | 5, 1], [6, 1], [7, 1])] : []));
    const iref = alpha ? [fullBox("iref", 0, 0, box("auxl", fields([2, 2], [1, 2], [1, 2])))] : [];
    return fullBox("meta", 0, 0, hdlr, pitm, iloc, iinf, ...iref, box("iprp", ipco, ipma));
  };

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
      ...(isAlpha ? [] : [colr]),
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
