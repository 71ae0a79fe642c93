/**
 * @module produce/perceptual
 * Per-image quality (issue 31): each AVIF or WebP output gets the least quality whose SSIMULACRA 2
 * score reaches what the quality reference, a mozjpeg JPEG at the quality level, scores on the
 * same image, instead of one quality per format calibrated on the average photo (which spends
 * bytes on quality nobody asked for in most images and falls short in some).
 *
 * Measured on a sample, not the whole output: up to 256x256 pixels, four 128x128 tiles from the
 * centres of the image's quadrants side by side (the whole image when it is that small). Tiles
 * keep the output's scale, so the encoder's artefacts on them are the ones it makes on the whole
 * image; SSIMULACRA 2 (codecs/ssim2) holds 155 bytes a pixel, 10 MiB for the sample.
 *
 * The reference is our libjpeg-turbo quantising with mozjpeg's tables at the level's quality
 * (codecs/jpeg): mozjpeg without its trellis. On the whole outputs of bench section 11's photos
 * its score kept within -1.6 and +1.0 of mozjpeg's (mean +0.2).
 *
 * The search: a trial at the calibrated quality, then one stepped by the format's typical slope
 * (formats/id) towards the target; each trial is the sample encoded, decoded and scored. The
 * chosen quality is interpolated between the two trials when they straddle the target, else
 * extrapolated by their secant's slope (at most one step further). Two trials, not a bisection:
 * each costs about 50 ms warm on the sample, and the score is close to linear in the quality
 * over such a step.
 *
 * Codec calls run strictly one after another and each reuses the memory of the one before
 * (codecs/resident `recycle`), so the search adds no memory beside the job's encoder for any
 * output larger than the sample.
 */
import type { EncodeOptions, Pixels } from "../codecs";
import { recycle } from "../codecs/resident";
import { formatName, type FormatId } from "../formats/id";
import type { CodecSession } from "./codec-session";

/** A tile's side: a multiple of 64 (AV1's superblock, 4 of WebP's and 8 of JPEG's macroblocks). */
const TILE = 128;
/** Outputs up to this many pixels are measured whole. */
const WHOLE_PIXELS = 4 * TILE * TILE;
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

/** Images narrower or lower than this are encoded at the calibrated quality (SSIMULACRA 2 needs 8x8 at its coarsest scale's input). */
export const SEARCH_MIN_SIDE = 16;

/** Whether `format`'s quality can be searched per image. */
export const searchesQuality = (format: FormatId): boolean => formatName(format).qualitySlope !== undefined;

/** The pixels the search measures for an output this size: at most WHOLE_PIXELS. */
export const samplePixels = (outputPixels: number): number => Math.min(outputPixels, WHOLE_PIXELS);

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
  if (width * height <= WHOLE_PIXELS || width < 2 * TILE || height < 2 * TILE) {
    // Small or narrow: the whole image when it is small enough, else a centre crop of that size.
    if (width * height <= WHOLE_PIXELS) return p;
    const w = Math.min(width, 2 * TILE * (width < 2 * TILE ? 1 : 2));
    const h = Math.min(height, Math.floor(WHOLE_PIXELS / w));
    return crop(p, [[Math.floor((width - w) / 2), Math.floor((height - h) / 2)]], w, h, 1);
  }
  const at: [number, number][] = [];
  for (const [fx, fy] of [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]) {
    // Tiles start on an 8-pixel boundary of the output, as its JPEG blocks do.
    at.push([clampTo(Math.round(fx * width - TILE / 2) & ~7, width - TILE), clampTo(Math.round(fy * height - TILE / 2) & ~7, height - TILE)]);
  }
  return crop(p, at, TILE, TILE, 2);
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
