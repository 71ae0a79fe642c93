/**
 * @module produce/pipeline
 * On-demand production for one request: load the original, check its header, decode, crop and
 * resize, encode. Each stage runs at most once per request, so when AVIF fails and the chain
 * falls back to WebP the decoded pixels are reused. Knows nothing of HTTP or Hono.
 */
import { CodecSession, decodesFrames, encodesAnimation, encodesRows, encodesSmallRows, JPEG_ROW_ENCODE_PIXELS, type EncodeOptions, type Pixels } from "./codec-session";
import type { InkConversion, RowEncoder } from "../codecs/rows";
import { formatSpec, type FormatId } from "../formats";
import { animationPixels, displaySize, HeaderError, readHeader, type ImageHeader, type Rect } from "../headers";
import type { ColourTag } from "../formats/probe";
import { SourceRejected, type StoredImage } from "../storage/r2";
import type { Size } from "../variants/key";
import { isIdentity, planResize, type Plan } from "./geometry";
import { AdmissionTimeout, type Ticket } from "./admission";
import { predictCost, streamedDecoderMemory, type Cost } from "./budget";
import { composeOrientation, crop, flatten, hasTransparency, orient } from "./orient";
import { resample, Resampler } from "./resample";
import { colourConversion, inkConversion, type ColourConversion } from "./colour";
import { smartWindow } from "./smart-crop";
import type { EncodeSettings } from "../config";
import { searchedAt, searchQuality, type QualitySearch } from "./perceptual";
import { Turns } from "./yield";

/** "Not now" verdicts (produce/verdicts): a response with nothing to serve and one of them is a 503. */
export { TEMPORARY_VERDICTS } from "./verdicts";

/** A step failed; `verdict` is the short reason reported in X-Image-Tried. */
export class ProductionError extends Error {
  constructor(
    readonly verdict: string,
    message: string,
  ) {
    super(message);
    this.name = "ProductionError";
  }
}

/** What production makes of a candidate before running anything (see `Production.decide`). */
export type Decision = { action: "now" } | { action: "defer" | "refuse"; reason: ProductionError };

export interface Timer {
  time<T>(stage: string, fn: () => Promise<T>): Promise<T>;
  /** Records `ms` spent in `stage` without timing a call (a wait measured elsewhere). */
  add?(stage: string, ms: number): void;
}

/**
 * What an admission failure means for the job: a job larger than the whole budget is refused
 * for good (`over-memory-budget`, never retried); no room in time is temporary.
 */
function admissionError(e: unknown): unknown {
  if (!(e instanceof AdmissionTimeout)) return e;
  return new ProductionError(e.never ? "over-memory-budget" : "admission-timeout", e.message);
}

export interface Limits {
  /** Largest source, in pixels; an animation's count over all its frames. */
  maxSourcePixels: number;
  maxAnimationFrames: number;
  /** What transparent pixels become in a format without alpha. */
  background: readonly [number, number, number];
  /**
   * The isolate's memory budget: below 4 MP of output a row encoder is chosen only when the
   * whole-image encoder beside the decoder would be over it.
   */
  memoryBudgetBytes?: number;
}

interface Source {
  image: StoredImage;
  header: ImageHeader;
  plan: Plan;
  /** The original's length (its bytes may have been let go while the job waits: `#facts`). */
  sourceBytes: number;
}

/**
 * A GIF that LZW packs below this many bytes per frame pixel is flat-colour graphics (stickers,
 * UI, cartoons), which lossless WebP frames keep smaller than lossy ones; a dithered photo as
 * GIF (0.7-0.9 bytes per pixel in the corpus) is smaller lossy. Measured with sharp at q87:
 * Pillow's dispose_*.gif (0.03 B/px) lossy 3.6-3.9x the GIF, lossless 0.93-1.03x; iss634.gif
 * (0.11) 0.93x / 0.66x; pan-kodim05 (0.91) 0.45x / 0.81x.
 */
const GRAPHIC_GIF_BYTES_PER_PIXEL = 0.25;

function graphicAnimation(header: ImageHeader, sourceBytes: number): boolean {
  return header.format === "gif" && sourceBytes < GRAPHIC_GIF_BYTES_PER_PIXEL * animationPixels(header);
}

export class Production {
  #source?: Promise<Source>;
  #pixels?: Promise<Pixels>;
  #pixelsReady = false;
  readonly codecs: CodecSession = Object.assign(new CodecSession(), { holder: new WeakRef(this) });

  /** Whether decode and resize already ran: only encodes remain to be paid for. */
  get pixelsReady(): boolean {
    return this.#pixelsReady;
  }

  constructor(
    private readonly load: () => Promise<StoredImage | null>,
    /** The variant asked for; once the original is read, with its stored focal point applied. */
    private size: Size | null,
    private readonly limits: Limits,
    private readonly timer: Timer,
  ) {}

  #loaded?: Source;
  /**
   * What the original was found to be, once its bytes were let go while the job waited for
   * room (`admit`): the facts every decision needs, and the version to read again.
   */
  #dropped?: Source;

  /** The original and its header, checked before anything is decoded; read again if it was let go. */
  source(): Promise<Source> {
    if (this.#dropped) {
      const facts = this.#dropped;
      this.#dropped = undefined;
      this.#source = this.#reloadSource(facts).then((s) => this.#owned(s));
    }
    this.#source ??= this.#loadSource().then((s) => this.#owned(s));
    return this.#source;
  }

  /** A source just read: its bytes are this job's own until `passthrough` hands them out. */
  #owned(s: Source): Source {
    this.codecs.own(s.image.bytes);
    return (this.#loaded = s);
  }

  /** The source's facts (header, plan, length), without reading a let-go original again. */
  async #facts(): Promise<Source> {
    return this.#dropped ?? (await this.source());
  }

  /** The source once `source()` has resolved, without waiting (for keys computed between awaits). */
  get loaded(): Source | undefined {
    return this.#dropped ?? this.#loaded;
  }

  /**
   * Lets the original's bytes go while the job waits for room: a job waiting in the gate holds
   * nothing (40 concurrent requests for sizes of a 24 MP photo each held its 1.9 MB while
   * waiting), and gives back its room to read (produce/admission `reserveRead`). Not once
   * decoding began (its pixels hold what they need).
   */
  #letGo(ticket: Ticket): void {
    const loaded = this.#loaded;
    if (!loaded || this.#pixels || this.#dropped) return;
    this.#dropped = { ...loaded, image: { ...loaded.image, bytes: new ArrayBuffer(0) } };
    this.#loaded = undefined;
    this.#source = undefined;
    ticket.letGo();
  }

  /** The original read again after it was let go; it must be the version the facts describe. */
  async #reloadSource(facts: Source): Promise<Source> {
    let image: StoredImage | null;
    try {
      image = await this.timer.time("r2", this.load);
    } catch (e) {
      if (e instanceof AdmissionTimeout) throw admissionError(e);
      throw new ProductionError("store-error", `reading the original again failed: ${(e as Error).message}`);
    }
    // Replaced (or removed) while this job waited: nothing is made from a version it did not price.
    if (!image || image.key !== facts.image.key || image.etag !== facts.image.etag) throw new ProductionError("store-error", `${facts.image.key} changed while this job waited for room`);
    return { ...facts, image };
  }

  async #loadSource(): Promise<Source> {
    let image: StoredImage | null;
    try {
      image = await this.timer.time("r2", this.load);
    } catch (e) {
      // No room yet to hold the original (the loader reserves it before reading): temporary.
      if (e instanceof AdmissionTimeout) throw admissionError(e);
      // The origin's file is there but is no image we take: final, and said so (a 422).
      if (e instanceof SourceRejected) throw new ProductionError("origin-rejected", e.message);
      // A storage fault (R2, or the origin down or slow) is temporary, never "no source".
      throw new ProductionError("store-error", `reading the original failed: ${(e as Error).message}`);
    }
    if (!image) throw new ProductionError("no-source", "no original stored for this stem");
    let header: ImageHeader | null;
    try {
      header = readHeader(new Uint8Array(image.bytes));
    } catch (e) {
      if (e instanceof HeaderError) throw new ProductionError("bad-source", `${image.key}: ${e.message}`);
      throw e;
    }
    if (!header) throw new ProductionError("bad-source", `${image.key}: not a known image format`);
    if (!formatSpec(header.format).canDecode) {
      throw new ProductionError("undecodable-source", `${image.key}: no decoder for ${header.format}`);
    }
    // The bomb guard: decoders allocate width*height*4 before they look at the data.
    if (header.width * header.height > this.limits.maxSourcePixels) {
      throw new ProductionError(
        "source-too-large",
        `${image.key}: ${header.width}x${header.height} exceeds ${this.limits.maxSourcePixels} pixels`,
      );
    }
    // Frames are decoded at their own size, which a GIF's may exceed its screen by far.
    if (!header.animated && animationPixels(header) > this.limits.maxSourcePixels) {
      throw new ProductionError("source-too-large", `${image.key}: a frame of ${animationPixels(header)} pixels exceeds ${this.limits.maxSourcePixels}`);
    }
    // An animation pays for every frame, even when only its first is shown: refused whole.
    if (header.animated && header.animation) {
      const { frames } = header.animation;
      if (frames > this.limits.maxAnimationFrames) {
        throw new ProductionError("source-too-large", `${image.key}: ${frames} frames exceed ${this.limits.maxAnimationFrames}`);
      }
      if (animationPixels(header) > this.limits.maxSourcePixels) {
        throw new ProductionError("source-too-large", `${image.key}: ${animationPixels(header)} pixels over ${frames} frames exceed ${this.limits.maxSourcePixels}`);
      }
    }
    // The focal point the origin stored with the original (`X-Image-Focal-Point` on PUT) places
    // its cover crops, unless the URL names a gravity of its own; `gravity=auto` defers to it.
    const stored = /^([01]\.\d\d),([01]\.\d\d)$/.exec(image.metadata?.focalPoint ?? "");
    const size = this.size;
    if (stored && size && size.width > 0 && size.height > 0 && !size.fit && !size.focus) {
      this.size = { ...size, focus: { x: Number(stored[1]), y: Number(stored[2]) }, smart: undefined };
    }
    const shown = displaySize(header);
    return { image, header, plan: planResize(shown.width, shown.height, this.size), sourceBytes: image.bytes.byteLength };
  }

  /**
   * The stored original itself when it already is `format` at the wanted size: re-encoding it
   * would only lose quality and bytes.
   */
  async passthrough(format: FormatId): Promise<StoredImage | null> {
    const { image, header, plan } = await this.source();
    const shown = displaySize(header);
    // Orientation metadata travels with the bytes and clients apply it, as they would to the original.
    if (!(header.format === format && isIdentity(plan, shown.width, shown.height))) return null;
    // A quality level or a background of its own asks for other bytes than the original's.
    if (this.size?.quality !== undefined || this.size?.background !== undefined) return null;
    // Served (and cached) as they are: no longer the job's own to free.
    this.codecs.share(image.bytes);
    return image;
  }

  /**
   * Whether `format` would carry the source's animation (an animated GIF or WebP, an
   * animation encoder for `format` that keeps its transparency, and codes it losslessly when it
   * is a flat-colour graphic, and is worth it at this canvas size), rather than a still of its
   * first frame. So a transparent, flat-colour or tiny GIF goes to Chrome as animated WebP,
   * not AVIF: lossy AV1 made Pillow's dispose_prev.gif 2.6-5x the GIF's bytes, where lossless
   * WebP keeps it at the GIF's size.
   */
  async animates(format: FormatId): Promise<boolean> {
    const { header, sourceBytes } = await this.#facts();
    if (!header.animated || !decodesFrames(header.format)) return false;
    const { ow, oh } = this.#layout(header.width, header.height, [], undefined, true);
    return encodesAnimation(format, header.hasAlpha, graphicAnimation(header, sourceBytes), ow * oh);
  }

  /** Whether the source is an animation (whatever `format` makes of it). */
  async animatedSource(): Promise<boolean> {
    return (await this.#facts()).header.animated;
  }

  /** Whether `transparent()` would have to decode (the header declares alpha). */
  async mayBeTransparent(): Promise<boolean> {
    return (await this.#facts()).header.hasAlpha && !this.pixelsReady;
  }

  #transparent?: Promise<boolean>;
  /** Whether the output pixels hold any transparency: cheap when the header declares no alpha. */
  transparent(): Promise<boolean> {
    this.#transparent ??= this.source().then(async ({ header }) => header.hasAlpha && hasTransparency(await this.pixels()));
    return this.#transparent;
  }

  /**
   * The predicted cost of producing `format` from here: `now` counts only what is left to do
   * for this request (decode and resize may already be paid), `fromScratch` everything.
   */
  async cost(format: FormatId, settings: EncodeSettings): Promise<{ now: Cost; fromScratch: Cost }> {
    const shape = await this.#shape(format, settings, await this.streamsOutput(format, settings));
    return { now: predictCost({ ...shape, pixelsReady: this.pixelsReady && !shape.animation }), fromScratch: predictCost({ ...shape, aliveBytes: 0, pixelsReady: false }) };
  }

  /** The job as the cost model sees it, with or without a row encoder. */
  async #shape(format: FormatId, settings: EncodeSettings, rows: boolean) {
    const { header, plan, sourceBytes } = await this.#facts();
    const rowPlan = formatSpec(header.format).rowScales ? this.#streamPlan(header) : null;
    const streamed = rowPlan && { scaledPixels: rowPlan.scaledWidth * rowPlan.scaledHeight, ...streamedDecoderMemory(header, sourceBytes, rowPlan.scaledWidth) };
    // An animation is priced frame by frame, never as "pixels ready" (each frame is decoded anew).
    const animation = (await this.animates(format)) && header.animation ? { frames: header.animation.frames, canvasPixels: header.width * header.height, alpha: header.hasAlpha, tracks: header.animation.tracks, highBitDepth: header.animation.highBitDepth } : undefined;
    const rowEncoded = !animation && rows ? { longSide: Math.max(plan.width, plan.height), alpha: header.hasAlpha && formatSpec(format).supportsAlpha } : undefined;
    return {
      animation,
      sourceSequence: header.animated ? header.animation : undefined,
      rowEncoded,
      sourceFormat: header.format,
      sourcePixels: header.width * header.height,
      sourceBytes,
      aliveBytes: this.codecs.retiredBytes,
      streamed: streamed ?? undefined,
      outputFormat: format,
      outputPixels: plan.pad ? plan.pad.width * plan.pad.height : plan.width * plan.height,
      outputAlpha: header.hasAlpha && formatSpec(format).supportsAlpha,
      settings,
      structureMs: formatSpec(header.format).cost.structureMs?.(header),
    };
  }

  /**
   * Production's call on `format`, before any of it runs (both overruns are fatal on
   * Cloudflare): produce it `now`; `defer` it to the queue (over `cpuMs` but within
   * `backgroundCpuMs`, when the caller has a background to defer to); or `refuse` it.
   */
  async decide(format: FormatId, settings: EncodeSettings, budget: { memoryBytes: number; cpuMs: number; backgroundCpuMs?: number }): Promise<Decision> {
    const { now, fromScratch } = await this.cost(format, settings);
    if (now.memoryBytes > budget.memoryBytes) {
      return { action: "refuse", reason: new ProductionError("over-memory-budget", `${format}: predicted ${(now.memoryBytes / 2 ** 20).toFixed(0)} MiB of memory`) };
    }
    if (now.cpuMs <= budget.cpuMs) return { action: "now" };
    const message = `${format}: predicted ${now.cpuMs.toFixed(0)} ms of CPU`;
    if (budget.backgroundCpuMs === undefined) return { action: "refuse", reason: new ProductionError("over-cpu-budget", message) };
    // Too slow for the request, but a queue consumer (its own CPU limit) can do it.
    if (fromScratch.cpuMs <= budget.backgroundCpuMs) return { action: "defer", reason: new ProductionError("over-cpu-budget", message) };
    // Too slow for the background too: that is final, not "later".
    return { action: "refuse", reason: new ProductionError("over-cpu-limit", `${message}, over the background budget too`) };
  }

  /** Refuses, before any of it runs, a job predicted over `budget`. */
  async assertWithinBudget(format: FormatId, settings: EncodeSettings, budget: { memoryBytes: number; cpuMs: number }): Promise<void> {
    const d = await this.decide(format, settings, budget);
    if (d.action !== "now") throw d.reason;
  }

  /**
   * Reserves this job's predicted whole-job memory for `format` in the isolate's gate before
   * any of it runs (what `now` still costs: decode and resize may be paid already); waits at
   * most `waitMs` for room.
   */
  async admit(ticket: Ticket, format: FormatId, settings: EncodeSettings, waitMs: number, extraBytes = 0): Promise<void> {
    const { now } = await this.cost(format, settings);
    const bytes = now.memoryBytes + extraBytes;
    try {
      try {
        await ticket.ensure(bytes, 0, now.parts, this.codecs);
      } catch (e) {
        if (!(e instanceof AdmissionTimeout) || e.never || waitMs <= 0) throw e;
        // No room now: the job lets its original go while it waits, and reads it again once
        // admitted (its reservation covers the read).
        this.#letGo(ticket);
        await ticket.ensure(bytes, waitMs, now.parts, this.codecs);
      }
    } catch (e) {
      throw admissionError(e);
    }
  }

  /**
   * The one way a variant is produced, for a request or a background job alike: refused before
   * any of it runs if predicted over `limits` (memory, CPU), then admitted by the isolate's gate
   * through `ticket` (whose priority, request or background, is the caller's), then encoded.
   * `extraBytes`: memory the caller will use beside the job while the ticket is held (the
   * re-encoder's verification decodes). Storing the bytes is the caller's: the rules differ
   * (a request's write-back, a job's new output, a re-encode's replacement).
   */
  async produce(ticket: Ticket, format: FormatId, settings: EncodeSettings, limits: { memoryBytes: number; cpuMs: number; waitMs: number; extraBytes?: number }): Promise<ArrayBuffer> {
    await this.assertWithinBudget(format, settings, limits);
    await this.admit(ticket, format, settings, limits.waitMs, limits.extraBytes);
    return this.encode(format, settings);
  }

  #conversion?: Promise<ColourConversion | null>;
  /**
   * The source's colours to sRGB (produce/colour), from the profile or code points its container
   * carries; applied to the resized output (a band at a time when it is written by rows), where
   * it costs a fraction of what it would on the source's pixels.
   */
  #colour(): Promise<ColourConversion | null> {
    this.#conversion ??= this.#colourTag().then(colourConversion);
    return this.#conversion;
  }

  #inkConversion?: Promise<InkConversion | null>;
  /** A CMYK source's inks to sRGB through its profile (produce/colour), as its rows are decoded. */
  #ink(): Promise<InkConversion | null> {
    this.#inkConversion ??= this.#colourTag().then(inkConversion);
    return this.#inkConversion;
  }

  #tag?: Promise<ColourTag | null>;
  /** What the source's container says of its colours (formats/colour-tag), read once. */
  #colourTag(): Promise<ColourTag | null> {
    this.#tag ??= this.source().then(({ image, header }) => formatSpec(header.format).colourTag?.(new Uint8Array(image.bytes)) ?? null);
    return this.#tag;
  }

  /** Decoded, cropped and resized pixels, ready for any encoder. */
  pixels(): Promise<Pixels> {
    this.#pixels ??= this.#makePixels().then((p) => {
      this.#pixelsReady = true;
      this.codecs.own(p.data.buffer);
      return p;
    });
    return this.#pixels;
  }

  async #makePixels(): Promise<Pixels> {
    const { image, header } = await this.source();
    // Re-encoding would keep one frame of an animation and drop the rest without a word; the
    // stored original (animation intact) is still served wherever its own format is accepted.
    // (GIF and WebP animations give their first frame here: a still.)
    if (header.animated && !decodesFrames(header.format)) throw new ProductionError("animated-source", `${image.key}: no frame decoder for an animated ${header.format}`);
    this.codecs.hold(image.bytes.byteLength);
    const out = await (formatSpec(header.format).rowScales ? this.#streamedPixels(image, header) : this.#wholePixels(image, header));
    (await this.#colour())?.(out.data, out.width * out.height);
    const { pad, window } = planResize(displaySize(header).width, displaySize(header).height, this.size);
    if (window && (window.width !== out.width || window.height !== out.height)) {
      // `gravity=auto`: the window where the content is, cut from the resized image.
      const at = await this.timer.time("smartcrop", () => smartWindow(out, window.width, window.height));
      this.codecs.own(out.data.buffer);
      const cut = new Uint8ClampedArray(window.width * window.height * 4);
      for (let row = 0; row < window.height; row++) cut.set(out.data.subarray(((at.y + row) * out.width + at.x) * 4, ((at.y + row) * out.width + at.x + window.width) * 4), row * window.width * 4);
      return { data: cut, width: window.width, height: window.height };
    }
    if (!pad || (pad.width === out.width && pad.height === out.height)) return out;
    // `fit=pad`: the image on a canvas of the asked box, the rest the background (opaque: a
    // pad is a letterbox, not a hole; Cloudflare Images' `background`).
    this.codecs.own(out.data.buffer);
    const [r, g, b] = this.limits.background;
    const canvas = new Uint8ClampedArray(pad.width * pad.height * 4);
    new Uint32Array(canvas.buffer).fill(((255 << 24) | (b << 16) | (g << 8) | r) >>> 0);
    for (let row = 0; row < out.height; row++) canvas.set(out.data.subarray(row * out.width * 4, (row + 1) * out.width * 4), ((pad.y + row) * pad.width + pad.x) * 4);
    return { data: canvas, width: pad.width, height: pad.height };
  }

  /**
   * Where the output comes from in stored pixels: the region to keep, the size to resample it
   * to (both in stored orientation, so the small output is what gets turned), and the
   * transforms to apply after. Planned in display space within the clean aperture, with the
   * centred crop's sides swapped back when a quarter-turn is pending.
   */
  #layout(storedWidth: number, storedHeight: number, ops: number[], clap?: Rect, frames = false): { region: Rect; ow: number; oh: number } {
    const base = clap ?? { x: 0, y: 0, width: storedWidth, height: storedHeight };
    const turned = ops.filter((o) => o >= 5).length % 2 === 1;
    // Frames are not composed after their resize: an animation's pad is a contain, its smart
    // crop a centred one (one window for every frame, not one per frame).
    const size = frames && this.size ? { ...this.size, smart: undefined, fit: this.size.fit === "pad" ? ("contain" as const) : this.size.fit } : this.size;
    const plan = planResize(turned ? base.height : base.width, turned ? base.width : base.height, size);
    const cw = turned ? plan.crop.height : plan.crop.width;
    const ch = turned ? plan.crop.width : plan.crop.height;
    let x = Math.floor((base.width - cw) / 2);
    let y = Math.floor((base.height - ch) / 2);
    const focus = this.size?.focus;
    if (focus) {
      // The focus is a point of the shown image: the same point of the stored one, then the
      // window centred on it and kept inside, as planResize does in display space.
      const [sx, sy] = storedPoint(focus.x, focus.y, composeOrientation(ops));
      x = Math.min(base.width - cw, Math.max(0, Math.round(sx * base.width - cw / 2)));
      y = Math.min(base.height - ch, Math.max(0, Math.round(sy * base.height - ch / 2)));
    }
    const region = { x: base.x + x, y: base.y + y, width: cw, height: ch };
    return { region, ow: turned ? plan.height : plan.width, oh: turned ? plan.width : plan.height };
  }

  /**
   * Shrink-on-load (libvips' rule): the largest scale 1/d the decoder offers at which the
   * region still has at least the output's pixels on each side, so the resampler only shrinks.
   */
  #streamPlan(header: ImageHeader): { denom: number; scaledWidth: number; scaledHeight: number } {
    const { region, ow, oh } = this.#layout(header.width, header.height, header.orientation, header.clap);
    const scales = formatSpec(header.format).rowScales ?? [1];
    const denom = scales.find((d) => region.width / d >= ow && region.height / d >= oh) ?? 1;
    // libjpeg rounds scaled sizes up (jdmaster.c jpeg_core_output_dimensions).
    return { denom, scaledWidth: Math.ceil(header.width / denom), scaledHeight: Math.ceil(header.height / denom) };
  }

  /** Row decoders (JPEG scaled, HEIC by tiles): bands streamed into the resampler; the full-size RGBA never exists. */
  async #streamedPixels(image: StoredImage, header: ImageHeader): Promise<Pixels> {
    let { pixels: out, ops } = await this.#streamRows(image, header, "decode");
    for (const o of ops) {
      this.codecs.own(out.data.buffer);
      out = orient(out, o);
    }
    return out;
  }

  /**
   * Decoded bands, cropped to the region and resampled as they come, into the output image or,
   * with `encode`, into a row encoder a band at a time (the output never whole either). Returns
   * the output (stored orientation: `ops` still to apply) or the encoded file.
   */
  async #streamRows(image: StoredImage, header: ImageHeader, stage: "decode"): Promise<{ pixels: Pixels; ops: number[] }>;
  async #streamRows(image: StoredImage, header: ImageHeader, stage: "encode", encode: { format: FormatId; opts: EncodeOptions; alpha: boolean }): Promise<ArrayBuffer>;
  async #streamRows(image: StoredImage, header: ImageHeader, stage: "decode" | "encode", encode?: { format: FormatId; opts: EncodeOptions; alpha: boolean }): Promise<{ pixels: Pixels; ops: number[] } | ArrayBuffer> {
    const { denom } = this.#streamPlan(header);
    // Bands written straight to an encoder are converted on their way (the pixels path does it once).
    const convert = encode ? await this.#colour() : null;
    let ops = header.orientation;
    // Which step a failure belongs to: the decoder's reads, or the encoder's writes.
    let failed: "decode" | "encode" = "decode";
    try {
      return await this.timer.time(stage, async () => {
        const dec = await this.codecs.openRows(header.format, image.bytes, denom, header, (await this.#ink()) ?? undefined);
        let enc: RowEncoder | undefined;
        try {
          // A decoder that applied the display transforms itself gives upright rows of the shown size.
          const shown = displaySize(header);
          if (dec.oriented && (dec.width !== shown.width || dec.height !== shown.height)) {
            throw new Error(`${header.format} decode failed: ${dec.width}x${dec.height} decoded where the header shows ${shown.width}x${shown.height}`);
          }
          if (dec.oriented) ops = [];
          const stored = dec.oriented ? { width: dec.width, height: dec.height } : header;
          const { region, ow, oh } = this.#layout(stored.width, stored.height, ops, dec.oriented ? undefined : header.clap);
          // The region in scaled pixels (the scaled image is ceil(W/d) x ceil(H/d)).
          const fx = dec.width / stored.width;
          const fy = dec.height / stored.height;
          const rx = Math.min(dec.width - 1, Math.floor(region.x * fx));
          const ry = Math.min(dec.height - 1, Math.floor(region.y * fy));
          const rw = Math.max(1, Math.min(dec.width - rx, Math.round(region.width * fx)));
          const rh = Math.max(1, Math.min(dec.height - ry, Math.round(region.height * fy)));
          if (encode) {
            failed = "encode";
            enc = await this.codecs.rowEncoder(encode.format, ow, oh, composeOrientation(ops), encode.alpha, encode.opts);
            failed = "decode";
          }
          const writer = enc;
          const resampler = this.codecs.scoped(() => new Resampler(rw, rh, ow, oh, writer && {
            bandRows: writer.bandRows,
            write: (rows, count) => {
              convert?.(rows, count * ow);
              failed = "encode";
              writer.write(rows, count);
              failed = "decode";
            },
          }));
          // Its band (the whole output without an encoder: owned as the pixels) is the job's own.
          if (writer) this.codecs.own(resampler.out.buffer);
          const note = () => this.codecs.note(dec.memoryBytes + (enc?.memoryBytes ?? 0), dec.jsBytes + resampler.bytes + (enc?.jsBytes ?? 0));
          const stride = dec.width * 4;
          const turns = new Turns();
          // Rows below the region are never decoded.
          for (let y = 0, band = await dec.read(); band && y < ry + rh; y += band.rows, band = y < ry + rh ? await dec.read() : null) {
            const first = Math.max(y, ry);
            const last = Math.min(y + band.rows, ry + rh);
            if (last > first) resampler.push(band.data, (first - y) * stride, stride, rx, last - first);
            if (enc) note();
            await turns.after(band.rows * dec.width);
          }
          note();
          if (!resampler.done) throw new Error(`${header.format} decode failed: ${image.key} ended before its last row`);
          if (!enc) return { pixels: { data: resampler.out, width: ow, height: oh }, ops };
          failed = "encode";
          const file = enc.finish();
          this.codecs.note(dec.memoryBytes + enc.memoryBytes, dec.jsBytes + resampler.bytes + enc.jsBytes + file.byteLength);
          return file;
        } finally {
          dec.close?.();
          this.codecs.retire(dec.memoryBytes + (enc?.memoryBytes ?? 0));
        }
      });
    } catch (e) {
      if (e instanceof ProductionError) throw e;
      throw new ProductionError(`${failed}-error`, `${image.key}: ${(e as Error).message}`);
    }
  }

  /**
   * Whether `format` is written from rows straight out of the decoder (`#streamRows`): a large
   * still (above JPEG_ROW_ENCODE_PIXELS of output, where whole-image encoders cost 11-35 bytes
   * a pixel) from a row decoder, in a shape the format's row encoder takes. Not once the pixels
   * exist (a fallback after another format failed reuses them).
   */
  async streamsOutput(format: FormatId, settings: EncodeSettings): Promise<boolean> {
    const { header, plan } = await this.source();
    // A pad canvas and a smart crop's window are made from the whole resized image (`pixels`).
    if (this.pixelsReady || header.animated || plan.pad || plan.window || !formatSpec(header.format).rowScales) return false;
    if (!encodesRows(format, composeOrientation(header.orientation), header.hasAlpha)) return false;
    if (plan.width * plan.height > JPEG_ROW_ENCODE_PIXELS) return true;
    // Smaller outputs code better and faster whole (a grid splits a 1200w AVIF in four), unless
    // the whole-image encoder beside a large decoder would take most of the isolate: a 24 MP
    // progressive JPEG's 69 MiB of coefficients beside AVIF's 54 MiB encoder (over the budget)
    // or WebP's ~20 MiB (100 MiB of RSS, measured), where a grid's tile encoder holds 16 MiB
    // and the WebP row encoder ~4. Past 3/4 of the budget a job blocks every other request in
    // the admission gate, so the few bytes the row encoders cost are worth it there.
    const budget = this.limits.memoryBudgetBytes;
    if (budget === undefined || !encodesSmallRows(format)) return false;
    return predictCost({ ...(await this.#shape(format, settings, false)), pixelsReady: false }).memoryBytes > 0.75 * budget;
  }

  /** Decoders that only give whole images: decode, then crop and resample. */
  async #wholePixels(image: StoredImage, header: ImageHeader): Promise<Pixels> {
    let pixels: Pixels;
    try {
      pixels = await this.timer.time("decode", () => this.codecs.decode(header.format, image.bytes));
    } catch (e) {
      throw new ProductionError("decode-error", `${image.key}: ${(e as Error).message}`);
    }
    // The clean aperture and orientation are display instructions the decoders ignore
    // (@jsquash/avif drops irot/imir/clap; WebP/PNG decoders ignore EXIF). They are only
    // trusted when the decoded size is the one the header declared.
    const declared = pixels.width === header.width && pixels.height === header.height;
    if (declared && header.clap) pixels = crop(pixels, header.clap);
    const ops = declared ? header.orientation : [];
    const { region, ow, oh } = this.#layout(pixels.width, pixels.height, ops);
    let out = pixels;
    if (!(region.width === pixels.width && region.height === pixels.height && ow === pixels.width && oh === pixels.height)) {
      try {
        out = await this.timer.time("resize", async () => this.codecs.scoped(() => resample(crop(pixels, region), ow, oh)));
      } catch (e) {
        throw new ProductionError("resize-error", `${image.key}: ${(e as Error).message}`);
      }
      this.codecs.note(0, pixels.data.byteLength + out.data.byteLength);
    }
    this.codecs.own(pixels.data.buffer);
    for (const o of ops) {
      this.codecs.own(out.data.buffer);
      out = orient(out, o);
    }
    return out;
  }

  /**
   * An animation, frame by frame: each composited canvas is cropped and resampled to the
   * output (the plan is the still's, so every frame matches what a still of this size shows),
   * then handed to the encoder. One canvas and one resampled frame at a time; the encoder
   * keeps what it needs of the previous ones.
   */
  async #encodeAnimation(format: FormatId, opts: EncodeOptions): Promise<ArrayBuffer> {
    const { image, header } = await this.source();
    this.codecs.hold(image.bytes.byteLength);
    const { region, ow, oh } = this.#layout(header.width, header.height, [], undefined, true);
    const identity = region.width === header.width && region.height === header.height && ow === header.width && oh === header.height;
    let dec;
    try {
      dec = this.codecs.openFrames(header.format, image.bytes);
    } catch (e) {
      throw new ProductionError("decode-error", `${image.key}: ${(e as Error).message}`);
    }
    if (dec.width !== header.width || dec.height !== header.height) {
      dec.close();
      throw new ProductionError("decode-error", `${image.key}: ${dec.width}x${dec.height} decoded where the header declares ${header.width}x${header.height}`);
    }
    // The first frame is read before the encoder is made: a GIF's loop count (NETSCAPE2.0)
    // is an extension block read along with it.
    let first;
    try {
      first = dec.next();
    } catch (e) {
      dec.close();
      throw new ProductionError("decode-error", `${image.key}: ${(e as Error).message}`);
    }
    let enc;
    try {
      enc = this.codecs.animationEncoder(format, ow, oh, dec.loop, { ...opts, lossless: graphicAnimation(header, image.bytes.byteLength), alpha: header.hasAlpha });
    } catch (e) {
      dec.close();
      throw new ProductionError("encode-error", (e as Error).message);
    }
    let frames = 0;
    let stage = "decode";
    try {
      return await this.timer.time("animate", async () => {
        const stride = header.width * 4;
        let resampled = 0;
        // One resampler for every frame (same region, same output size).
        const r = identity ? null : this.codecs.scoped(() => new Resampler(region.width, region.height, ow, oh));
        const turns = new Turns();
        for (let frame = first; frame; frame = (await turns.after(header.width * header.height), stage = "decode", dec.next())) {
          stage = "encode";
          const target = enc.canvas();
          if (!r) target.set(frame.canvas);
          else {
            r.restart();
            r.push(frame.canvas, region.y * stride, stride, region.x, region.height);
            target.set(r.out);
            resampled = r.bytes;
          }
          enc.add(frame.durationMs);
          frames++;
          this.codecs.note(dec.memoryBytes + enc.memoryBytes, dec.jsBytes + resampled);
        }
        stage = "encode";
        const out = enc.finish();
        this.codecs.note(dec.memoryBytes + enc.memoryBytes, dec.jsBytes + resampled + out.byteLength);
        return out;
      });
    } catch (e) {
      if (e instanceof ProductionError) throw e;
      throw new ProductionError(`${stage}-error`, `${image.key}: frame ${frames + 1}: ${(e as Error).message}`);
    } finally {
      this.codecs.retire(dec.memoryBytes + enc.memoryBytes);
      dec.close();
      enc.close();
    }
  }

  async encode(format: FormatId, opts: EncodeSettings): Promise<ArrayBuffer> {
    if (await this.animates(format)) return this.#encodeAnimation(format, opts);
    if (await this.streamsOutput(format, opts)) {
      const { image, header } = await this.source();
      this.codecs.hold(image.bytes.byteLength);
      // An alpha channel is kept only where the format has one (the JPEG and AVIF row encoders
      // take opaque sources only: see each format module's `codecs.rowEncoder`).
      return this.#streamRows(image, header, "encode", { format, opts, alpha: header.hasAlpha && formatSpec(format).supportsAlpha });
    }
    let pixels = await this.pixels();
    if (!formatSpec(format).supportsAlpha && (await this.transparent())) {
      pixels = flatten(pixels, this.limits.background);
      this.codecs.own(pixels.data.buffer);
    }
    const tuned = await this.#perImageQuality(format, pixels, opts);
    try {
      return await this.timer.time("encode", () => this.codecs.encode(format, pixels, tuned));
    } catch (e) {
      throw new ProductionError("encode-error", (e as Error).message);
    }
  }

  /** What per-image quality chose for the last output (produce/perceptual), when it ran. */
  searched?: QualitySearch;

  /**
   * `opts` with the quality per-image quality chooses for these pixels (produce/perceptual),
   * for an opaque still whose settings name a target level; else `opts` as they are. A search
   * that fails (a codec error on the sample) leaves the calibrated quality: never the output's
   * failure.
   */
  async #perImageQuality(format: FormatId, pixels: Pixels, opts: EncodeSettings): Promise<EncodeSettings> {
    this.searched = undefined;
    const target = opts.target;
    if (target === undefined || !searchedAt(format, pixels.width, pixels.height) || hasTransparency(pixels)) return opts;
    try {
      const trial = new CodecSession(this.codecs.instances);
      this.searched = await this.timer.time("quality", () => searchQuality(this.codecs, trial, format, pixels, opts, target));
      return { ...opts, quality: this.searched.quality };
    } catch {
      return opts;
    }
  }
}

/**
 * A point of the shown image (fractions, 0,0 top left) as a point of the stored image, for the
 * EXIF orientation (CIPA DC-008 4.6.4.A) that turns stored into shown: 6 shows the stored image
 * turned 90 degrees clockwise, so the shown top left is the stored bottom left.
 */
export function storedPoint(x: number, y: number, orientation: number): [number, number] {
  switch (orientation) {
    case 2: return [1 - x, y];
    case 3: return [1 - x, 1 - y];
    case 4: return [x, 1 - y];
    case 5: return [y, x];
    case 6: return [y, 1 - x];
    case 7: return [1 - y, 1 - x];
    case 8: return [1 - y, x];
    default: return [x, y];
  }
}
