/**
 * @module formats/id
 * The names of the formats the registry (formats/index) knows, and the few facts about each that
 * configuration needs: its canonical extension and aliases, whether an encoder is bundled, and
 * the encoder's highest speed setting. A leaf: config.ts validates `[vars]` from this table alone,
 * so `npm run check:config` bundles no codec (the format modules spread these facts into their
 * specs, so they are written once).
 */
export type FormatId = "avif" | "heic" | "webp" | "jpg" | "png" | "gif";

export interface FormatName {
  readonly id: FormatId;
  /** Canonical extension first: it is the one used to name variants in R2. */
  readonly extensions: readonly string[];
  /**
   * A WASM encoder is bundled. HEIC has none (no HEVC encoder ships as WASM under a usable
   * licence), so a HEIC is only ever served when an origin produced it.
   */
  readonly canEncode: boolean;
  /** The highest encoder speed setting it takes (SPEED, REENCODE_SPEED), when it is encoded. */
  readonly maxSpeed?: number;
  /**
   * Its quality can be searched per image (PER_IMAGE_QUALITY, produce/perceptual): SSIMULACRA 2
   * points a quality step adds near the defaults, the search's first guess of its slope.
   */
  readonly qualitySlope?: number;
}

export const FORMAT_NAMES = {
  // libaom's cpu-used 0-10.
  avif: { id: "avif", extensions: ["avif"], canEncode: true, maxSpeed: 10, qualitySlope: 0.6 },
  heic: { id: "heic", extensions: ["heic", "heif"], canEncode: false },
  // libwebp's method 0-6.
  webp: { id: "webp", extensions: ["webp"], canEncode: true, maxSpeed: 6, qualitySlope: 0.5 },
  // 0: progressive scans; 1: one optimised scan (formats/jpeg jpegCoding).
  jpg: { id: "jpg", extensions: ["jpg", "jpeg"], canEncode: true, maxSpeed: 1 },
  png: { id: "png", extensions: ["png"], canEncode: true },
  gif: { id: "gif", extensions: ["gif"], canEncode: false },
} as const satisfies Record<FormatId, FormatName>;

/** One format's facts, typed as the interface (so optional facts such as maxSpeed are readable). */
export function formatName(id: FormatId): FormatName {
  return FORMAT_NAMES[id];
}

/** Every format, in the registry's order. */
export const FORMAT_IDS = Object.keys(FORMAT_NAMES) as FormatId[];

const byToken = new Map<string, FormatName>(Object.values(FORMAT_NAMES).flatMap((n) => n.extensions.map((e) => [e, n] as const)));

/** A format by extension or by the token caplists and config use (case-insensitive; `jpeg`, `heif`). */
export function formatNameFromToken(token: string): FormatName | undefined {
  return byToken.get(token.toLowerCase());
}
