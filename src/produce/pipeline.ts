/**
 * @module produce/pipeline
 * On-demand production for one request: load the original, check its header, decode, crop and
 * resize, encode. Each stage runs at most once per request, so when AVIF fails and the chain
 * falls back to WebP the decoded pixels are reused. Knows nothing of HTTP or Hono.
 */
import { CodecSession, type EncodeOptions, type Pixels } from "../codecs";
import { formatSpec, type FormatId } from "../formats";
import { HeaderError, readHeader, type ImageHeader } from "../headers";
import type { StoredImage } from "../storage/r2";
import type { Size } from "../variants/key";
import { isIdentity, planResize, type Plan } from "./geometry";
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
    return { image, header, plan: planResize(header.width, header.height, this.size) };
  }

  /**
   * The stored original itself when it already is `format` at the wanted size: re-encoding it
   * would only lose quality and bytes.
   */
  async passthrough(format: FormatId): Promise<StoredImage | null> {
    const { image, header, plan } = await this.source();
    return header.format === format && isIdentity(plan, header.width, header.height) ? image : null;
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
    let { plan } = await this.source();
    let pixels: Pixels;
    try {
      pixels = await this.timer.time("decode", () => this.codecs.decode(header.format, image.bytes));
    } catch (e) {
      throw new ProductionError("decode-error", `${image.key}: ${(e as Error).message}`);
    }
    if (pixels.width !== header.width || pixels.height !== header.height) {
      // The header lied (or the decoder applied a transform): re-plan on what was decoded.
      plan = planResize(pixels.width, pixels.height, this.size);
    }
    if (isIdentity(plan, pixels.width, pixels.height)) return pixels;
    try {
      return await this.timer.time("resize", async () => resample(crop(pixels, plan.crop), plan.width, plan.height));
    } catch (e) {
      throw new ProductionError("resize-error", `${image.key}: ${(e as Error).message}`);
    }
  }

  async encode(format: FormatId, opts: EncodeOptions): Promise<ArrayBuffer> {
    const pixels = await this.pixels();
    try {
      return await this.timer.time("encode", () => this.codecs.encode(format, pixels, opts));
    } catch (e) {
      throw new ProductionError("encode-error", (e as Error).message);
    }
  }
}

function crop(p: Pixels, r: Plan["crop"]): Pixels {
  if (r.x === 0 && r.y === 0 && r.width === p.width && r.height === p.height) return p;
  const out = new Uint8ClampedArray(r.width * r.height * 4);
  for (let row = 0; row < r.height; row++) {
    const from = ((r.y + row) * p.width + r.x) * 4;
    out.set(p.data.subarray(from, from + r.width * 4), row * r.width * 4);
  }
  return { data: out, width: r.width, height: r.height };
}
