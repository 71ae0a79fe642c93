/**
 * @module produce/perceptual
 * Per-image quality (issue 31): an output (AVIF by default, PER_IMAGE_QUALITY) gets the least
 * quality whose SSIMULACRA 2 score reaches what the quality reference, a mozjpeg JPEG at the
 * quality level, scores on the same image, instead of one quality per format calibrated on the
 * average photo (which spends bytes on quality nobody asked for in most images and falls short
 * in some).
 *
 * Measured on a sample, not the whole output: 256x256 pixels, four 128x128 tiles from the
 * centres of the image's quadrants side by side. Tiles keep the output's scale, so the
 * encoder's artefacts on them are the ones it makes on the whole image; SSIMULACRA 2
 * (codecs/ssim2) holds 155 bytes a pixel, 10 MiB for the sample. Outputs under four samples
 * keep the calibrated quality (SEARCH_MIN_PIXELS).
 *
 * The reference is stood in for by our libjpeg-turbo quantising with mozjpeg's tables at the
 * level's quality (codecs/jpeg): mozjpeg without its trellis. Measured in Node against
 * mozjpeg (@jsquash/jpeg, the bench's reference) on 4 Kodak and 4 Unsplash photos not in bench
 * section 11: within -0.3 and +0.8 points on the whole images, -0.5 and +0.3 on their samples;
 * but 7.5 points under it on the sample of one photo of saturated paint (SATURATED_SHARE).
 *
 * The search: a trial at the calibrated quality, then one stepped by the format's typical slope
 * (formats/id) towards the target, and a third further down when the second is still well
 * above it; each trial is the sample encoded, decoded and scored (about 60 ms warm for AVIF at
 * cpu-used 8). The chosen quality is interpolated between the two trials that straddle the
 * target, else the lowest trial that reached it, else extrapolated up from the highest.
 *
 * Codec calls run strictly one after another and each reuses the memory of the one before
 * (codecs/resident `recycle`), so the search adds no memory beside the job's encoder for an
 * output larger than the sample.
 */
import type { EncodeOptions, Pixels } from "../codecs";
import { recycle } from "../codecs/resident";
import { formatName, type FormatId } from "../formats/id";
import type { CodecSession } from "./codec-session";

/** A tile's side: a multiple of 64 (AV1's superblock, 4 of WebP's and 8 of JPEG's macroblocks). */
const TILE = 128;
/**
 * Tiles to a side of the sample: a GRID x GRID mosaic from the centres of as many cells of the
 * image. Sixteen tiles of 64 (the same pixels, more places) were tried: on bench section 11
 * AVIF came out alike (worst photo 3.2 points under the reference instead of 2.3) and WebP
 * far worse (1.38x the reference's bytes on Unsplash), its encoder misjudged on such small tiles.
 */
const GRID = 2;
/** The sample's side. */
const SIDE = GRID * TILE;
/** The sample's pixels. */
const SAMPLE_PIXELS = SIDE * SIDE;
/** Trial encodes at most. */
export const MAX_TRIALS = 3;
/** How far from the calibrated quality the search may go, down and up. */
const RANGE = { down: 20, up: 15 };
/** Points added to the reference's score on the sample: the sample's and the stand-in's errors are not symmetric in what they cost (bench section 11). */
const MARGIN = 0.75;
/**
 * A sample with more than this share of strongly saturated pixels (max - min channel over 128)
 * keeps the calibrated quality: there the stand-in reference misjudges mozjpeg. Measured on
 * samples: within -0.5 and +0.3 of mozjpeg's score on 8 photos (4 Kodak, 4 Unsplash) up to 26%
 * saturated, and 7.5 points under it on the one photo 70% saturated (paint on a brick wall).
 */
const SATURATED_SHARE = 0.4;
/**
 * A second trial this far above the target (points) earns a third, lower one, at most
 * MAX_THIRD_STEP lower: the sample's score can stay flat over a few steps and then fall fast
 * (kodim10: 82.8 at q80, 82.5 at q77, 75.1 at q62), so a secant's step can overshoot.
 */
const FAR_ABOVE = 1;
const MAX_THIRD_STEP = 6;
/** The smallest step between two trials: AVIF's 0-100 quality maps to 64 quantizers, so one step may change nothing. */
const MIN_STEP = 2;
/** A trial within this many points above the target is taken as it is. */
const CLOSE_ENOUGH = 0.3;

/** Whether `format`'s quality can be searched per image. */
export const searchesQuality = (format: FormatId): boolean => formatName(format).qualitySlope !== undefined;

/**
 * Outputs smaller than four samples keep the calibrated quality: there the trials would cost
 * 2-5 times the encode itself (a 300x200 AVIF: 55 ms to encode, about 200 ms of trials), for
 * a kilobyte or two, and a scroll of thumbnails would wait for it (bench section 7's eight
 * concurrent thumbnails: slowest 3.0 s with the search, 1.9 s without).
 */
export const SEARCH_MIN_PIXELS = 4 * SAMPLE_PIXELS;

/** Whether an output of `format` this size has its quality searched (when its settings name a target). */
export const searchedAt = (format: FormatId, width: number, height: number): boolean =>
  searchesQuality(format) && width * height >= SEARCH_MIN_PIXELS && Math.min(width, height) >= 16;

/** The pixels the search measures for an output this size. */
export const samplePixels = (outputPixels: number): number => Math.min(outputPixels, SAMPLE_PIXELS);

export interface QualitySearch {
  /** The chosen quality (the encoder's own scale). */
  quality: number;
  /** The reference's score on the sample plus the margin: what the output should reach (NaN when no trial ran). */
  target: number;
  /** Qualities tried, with the sample's score at each. */
  trials: { quality: number; score: number }[];
}

/** The sample of `p` the search measures (see the module comment). */
export function sampleOf(p: Pixels): Pixels {
  const { width, height } = p;
  if (width < SIDE || height < SIDE) {
    // A narrow output (a banner): a centre crop of as many pixels, at most twice the sample's width.
    const w = Math.min(width, 2 * SIDE);
    const h = Math.min(height, Math.floor(SAMPLE_PIXELS / w));
    return crop(p, [[Math.floor((width - w) / 2), Math.floor((height - h) / 2)]], w, h, 1);
  }
  const at: [number, number][] = [];
  for (let j = 0; j < GRID; j++) {
    for (let i = 0; i < GRID; i++) {
      // Tiles start on an 8-pixel boundary of the output, as its JPEG blocks do.
      const x = Math.round(((i + 0.5) / GRID) * width - TILE / 2) & ~7;
      const y = Math.round(((j + 0.5) / GRID) * height - TILE / 2) & ~7;
      at.push([clampTo(x, width - TILE), clampTo(y, height - TILE)]);
    }
  }
  return crop(p, at, TILE, TILE, GRID);
}

const clampTo = (v: number, max: number) => Math.max(0, Math.min(max, v));

/** Tiles of `w` x `h` from `at`, `across` to a row, as one image. */
function crop(p: Pixels, at: [number, number][], w: number, h: number, across: number): Pixels {
  const rows = Math.ceil(at.length / across);
  const out = new Uint8ClampedArray(w * across * h * rows * 4);
  const stride = w * across * 4;
  at.forEach(([x, y], i) => {
    const ox = (i % across) * w * 4;
    const oy = Math.floor(i / across) * h;
    for (let r = 0; r < h; r++) out.set(p.data.subarray(((y + r) * p.width + x) * 4, ((y + r) * p.width + x + w) * 4), (oy + r) * stride + ox);
  });
  return { data: out, width: w * across, height: h * rows };
}

/**
 * The quality of `format` at which `pixels` score what the reference (a JPEG at `level`)
 * scores on them, starting from the calibrated `opts.quality`. Runs its codec calls in `session`
 * (the job's, whose memory account notes the search's peak) through `trial`, a session of its
 * own over the same instances.
 */
export async function searchQuality(session: CodecSession, trial: CodecSession, format: FormatId, pixels: Pixels, opts: EncodeOptions, level: number): Promise<QualitySearch> {
  // The typical slope first (formats/id); the secant step corrects it per image.
  const typical = formatName(format).qualitySlope;
  if (typical === undefined) throw new Error(`no quality search for ${format}`);
  const sample = sampleOf(pixels);
  if (saturatedShare(sample) > SATURATED_SHARE) return { quality: opts.quality, target: NaN, trials: [] };
  let peak = 0;
  // One codec call, then its memory handed back to the job for the next (see the module comment).
  const step = async <T>(call: () => Promise<T>): Promise<T> => {
    const before = new Set(trial.instances.used);
    try {
      return await call();
    } finally {
      for (const r of trial.instances.used) if (!before.has(r)) peak = Math.max(peak, r.bytes());
      recycle(trial.instances, before);
    }
  };
  const score = async (encoded: { decode(): Promise<Pixels> }) => {
    const decoded = await step(encoded.decode);
    return step(async () => trial.score(sample, decoded));
  };
  const reference = await step(() => trial.encode("jpg", sample, { quality: level, speed: 1 }));
  const target = (await score({ decode: () => trial.decode("jpg", reference) })) + MARGIN;
  const trials: { quality: number; score: number }[] = [];
  const lo = Math.max(1, opts.quality - RANGE.down);
  const hi = Math.min(100, opts.quality + RANGE.up);
  const clamp = (q: number) => Math.max(lo, Math.min(hi, Math.round(q)));
  const tryAt = async (quality: number) => {
    const coded = await step(() => trial.trialEncode(format, sample, { ...opts, quality }));
    const s = await score({ decode: () => trial.trialDecode(format, coded, sample.width, sample.height) });
    trials.push({ quality, score: s });
    return s;
  };
  const s0 = await tryAt(opts.quality);
  let slope = typical;
  if (!(s0 >= target && s0 - target < CLOSE_ENOUGH)) {
    const by = (target - s0) / typical;
    const q1 = clamp(opts.quality + Math.sign(by) * Math.max(MIN_STEP, Math.abs(by)));
    if (q1 !== opts.quality) {
      const s1 = await tryAt(q1);
      // The secant's slope when it is a sane one (scores rise with quality), else the typical one.
      const secant = (s1 - s0) / (q1 - opts.quality);
      if (secant > 0.05) slope = secant;
      // Both well above the target: a third trial further down, by the secant's slope.
      if (s1 >= target + FAR_ABOVE && s0 >= target) {
        const q2 = clamp(q1 - Math.min(MAX_THIRD_STEP, Math.max(MIN_STEP, (s1 - target) / slope)));
        if (q2 < q1) await tryAt(q2);
      }
    }
  }
  session.note(peak, pixels.data.byteLength + 3 * sample.data.byteLength);
  return { quality: choose(trials, target, slope, hi), target, trials };
}

/**
 * The least quality predicted to reach `target` from the trials (see the module comment):
 * interpolated between the two around it; else the lowest trial, when every one reached it
 * (never below a quality tried: the sample's score is flat over a step or two, so a slope
 * from two close trials is noise); else extrapolated up by `slope` from the highest, at most
 * one trial step beyond it, within `hi`.
 */
function choose(trials: { quality: number; score: number }[], target: number, slope: number, hi: number): number {
  const sorted = [...trials].sort((a, b) => a.quality - b.quality);
  const first = sorted.findIndex((t) => t.score >= target);
  if (first > 0) {
    const [a, b] = [sorted[first - 1], sorted[first]];
    return Math.ceil(a.quality + ((target - a.score) / (b.score - a.score)) * (b.quality - a.quality));
  }
  if (first === 0) return sorted[0].quality;
  const step = sorted.length > 1 ? sorted[sorted.length - 1].quality - sorted[0].quality : Infinity;
  const top = sorted[sorted.length - 1];
  return Math.min(hi, Math.ceil(top.quality + Math.min(step, (target - top.score) / slope)));
}

/** The share of pixels whose channels differ by more than 128 (strongly saturated colour). */
function saturatedShare(p: Pixels): number {
  let n = 0;
  const d = p.data;
  for (let i = 0; i < d.length; i += 4) if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 128) n++;
  return n / (d.length / 4);
}

/** The search as a diagnostic header's value: `q=72; target=79.41; trials=80:82.10,72:79.03`. */
export const describeSearch = (s: QualitySearch): string =>
  s.trials.length === 0
    ? `q=${s.quality}; calibrated (saturated sample)`
    : `q=${s.quality}; target=${s.target.toFixed(2)}; trials=${s.trials.map((t) => `${t.quality}:${t.score.toFixed(2)}`).join(",")}`;
