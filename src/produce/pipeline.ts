/**
 * @module produce/pipeline
 * On-demand production for one request: load the original, check its header, decode, crop and
 * resize, encode. Each stage runs at most once per request, so when AVIF fails and the chain
 * falls back to WebP the decoded pixels are reused. Knows nothing of HTTP or Hono.
 */
import { CodecSession, type EncodeOptions, type Pixels } from "../codecs";
import { formatSpec, type FormatId } from "../formats";
import { displaySize, HeaderError, readHeader, type ImageHeader } from "../headers";
import type { StoredImage } from "../storage/r2";
import type { Size } from "../variants/key";
import { isIdentity, planResize, type Plan } from "./geometry";
import { predictCost, type Cost } from "./budget";
import { crop, flatten, hasTransparency, orient } from "./orient";
import { resample } from "./resample";

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

export interface Timer {
  time<T>(stage: string, fn: () => Promise<T>): Promise<T>;
}

export interface Limits {
  maxSourcePixels: number;
  /** What transparent pixels become in a format without alpha. */
  background: readonly [number, number, number];
}

interface Source {
  image: StoredImage;
  header: ImageHeader;
  plan: Plan;
}

export class Production {
  #source?: Promise<Source>;
  #pixels?: Promise<Pixels>;
  #pixelsReady = false;
  readonly codecs = new CodecSession();

  /** Whether decode and resize already ran: only encodes remain to be paid for. */
  get pixelsReady(): boolean {
    return this.#pixelsReady;
  }

  constructor(
    private readonly load: () => Promise<StoredImage | null>,
    private readonly size: Size | null,
    private readonly limits: Limits,
    private readonly timer: Timer,
  ) {}

  /** The original and its header, checked before anything is decoded. */
  source(): Promise<Source> {
    this.#source ??= this.#loadSource();
    return this.#source;
  }

  async #loadSource(): Promise<Source> {
    const image = await this.timer.time("r2", this.load);
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
    const shown = displaySize(header);
    return { image, header, plan: planResize(shown.width, shown.height, this.size) };
  }

  /**
   * The stored original itself when it already is `format` at the wanted size: re-encoding it
   * would only lose quality and bytes.
   */
  async passthrough(format: FormatId): Promise<StoredImage | null> {
    const { image, header, plan } = await this.source();
    const shown = displaySize(header);
    // Orientation metadata travels with the bytes and clients apply it, as they would to the original.
    return header.format === format && isIdentity(plan, shown.width, shown.height) ? image : null;
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
  async cost(format: FormatId, settings: EncodeOptions): Promise<{ now: Cost; fromScratch: Cost }> {
    const { header, plan } = await this.source();
    const shape = {
      sourceFormat: header.format,
      sourcePixels: header.width * header.height,
      outputFormat: format,
      outputPixels: plan.width * plan.height,
      settings,
    };
    return { now: predictCost({ ...shape, pixelsReady: this.pixelsReady }), fromScratch: predictCost({ ...shape, pixelsReady: false }) };
  }

  /** Refuses, before any of it runs, a job predicted over `budget` (both overruns are fatal on Cloudflare). */
  async assertWithinBudget(format: FormatId, settings: EncodeOptions, budget: { memoryBytes: number; cpuMs: number }): Promise<void> {
    const { now } = await this.cost(format, settings);
    if (now.memoryBytes > budget.memoryBytes) {
      throw new ProductionError("over-memory-budget", `${format}: predicted ${(now.memoryBytes / 2 ** 20).toFixed(0)} MiB of WASM memory`);
    }
    if (now.cpuMs > budget.cpuMs) throw new ProductionError("over-cpu-budget", `${format}: predicted ${now.cpuMs.toFixed(0)} ms of CPU`);
  }

  /** Decoded, cropped and resized pixels, ready for any encoder. */
  pixels(): Promise<Pixels> {
    this.#pixels ??= this.#makePixels().then((p) => {
      this.#pixelsReady = true;
      return p;
    });
    return this.#pixels;
  }

  async #makePixels(): Promise<Pixels> {
    const { image, header } = await this.source();
    // Re-encoding would keep one frame of an animation and drop the rest without a word; the
    // stored original (animation intact) is still served wherever its own format is accepted.
    if (header.animated) throw new ProductionError("animated-source", `${image.key}: animated sources are not transcoded`);
    let pixels: Pixels;
    try {
      pixels = await this.timer.time("decode", () => this.codecs.decode(header.format, image.bytes));
    } catch (e) {
      throw new ProductionError("decode-error", `${image.key}: ${(e as Error).message}`);
    }
    // The clean aperture and orientation are display instructions the decoders ignore
    // (@jsquash/avif drops irot/imir/clap; JPEG/WebP/PNG decoders ignore EXIF). They are
    // only trusted when the decoded size is the one the header declared.
    const declared = !formatSpec(header.format).decoderOrients && pixels.width === header.width && pixels.height === header.height;
    if (declared && header.clap) pixels = crop(pixels, header.clap);
    const ops = declared ? header.orientation : [];
    const turned = ops.filter((o) => o >= 5).length % 2 === 1;
    // Plan in display space, then resize in stored orientation (the small output is what gets
    // turned) with the centred crop's sides swapped back when a quarter-turn is pending.
    const plan = planResize(turned ? pixels.height : pixels.width, turned ? pixels.width : pixels.height, this.size);
    const cw = turned ? plan.crop.height : plan.crop.width;
    const ch = turned ? plan.crop.width : plan.crop.height;
    const ow = turned ? plan.height : plan.width;
    const oh = turned ? plan.width : plan.height;
    let out = pixels;
    if (!(cw === pixels.width && ch === pixels.height && ow === pixels.width && oh === pixels.height)) {
      const region = { x: Math.floor((pixels.width - cw) / 2), y: Math.floor((pixels.height - ch) / 2), width: cw, height: ch };
      try {
        out = await this.timer.time("resize", async () => resample(crop(pixels, region), ow, oh));
      } catch (e) {
        throw new ProductionError("resize-error", `${image.key}: ${(e as Error).message}`);
      }
    }
    for (const o of ops) out = orient(out, o);
    return out;
  }

  async encode(format: FormatId, opts: EncodeOptions): Promise<ArrayBuffer> {
    let pixels = await this.pixels();
    if (!formatSpec(format).supportsAlpha && (await this.transparent())) pixels = flatten(pixels, this.limits.background);
    try {
      return await this.timer.time("encode", () => this.codecs.encode(format, pixels, opts));
    } catch (e) {
      throw new ProductionError("encode-error", (e as Error).message);
    }
  }
}
