/**
 * @module formats
 * The format registry: everything the rest of the code may ask about an image format (MIME
 * type, file extensions, alpha, which codecs exist) lives here, so no other module switches on
 * format names. Header parsing (magic bytes and dimensions without decoding) lives in
 * `./headers.ts` and reports one of these ids.
 */

export type FormatId = "avif" | "heic" | "webp" | "jpg" | "png" | "gif";

export interface FormatSpec {
  readonly id: FormatId;
  /** The media type sent in Content-Type and matched in Accept. */
  readonly mime: string;
  /** Other media types clients use for the same format (matched in Accept only). */
  readonly mimeAliases: readonly string[];
  /** Canonical extension first: it is the one used to name variants in R2. */
  readonly extensions: readonly string[];
  readonly supportsAlpha: boolean;
  /**
   * Every image client decodes it (JPEG, PNG). A URL in any other format matched only through
   * a wildcard (`image/*` covers HEIC in Chrome's Accept) is not a promise the client decodes it.
   */
  readonly universal: boolean;
  /** A WASM decoder is bundled. */
  readonly canDecode: boolean;
  /**
   * A WASM encoder is bundled. HEIC has none (no HEVC encoder ships as WASM under a usable
   * licence), so a HEIC is only ever served when an origin produced it.
   */
  readonly canEncode: boolean;
  /**
   * The decoder streams rows (our own builds: codecs/rows.ts), at these downscale factors:
   * libjpeg's DCT scales 1/1 to 1/8 for JPEG, libwebp's rescaler at the same steps for WebP,
   * full size for HEIC's tiles and PNG's rows. Absent: the decoder
   * only gives whole images.
   */
  readonly rowScales?: readonly number[];
  /**
   * When several full-size originals of one stem exist, the one to transcode from: lower is
   * better. Lossless first, then the formats whose decoders are fastest and most tolerant.
   */
  readonly sourceRank: number;
  /**
   * An animated source can be served in this format with its animation: WebP is encoded
   * frame by frame (codecs/animation), a GIF original is passed through. AVIF can hold an
   * image sequence, but no encoder for one is bundled yet, so an animated source is never
   * served as AVIF unless the origin pushed one.
   */
  readonly animation: boolean;
}

const SPECS: readonly FormatSpec[] = [
  {
    id: "avif",
    universal: false,
    mime: "image/avif",
    mimeAliases: [],
    extensions: ["avif"],
    supportsAlpha: true,
    canDecode: true,
    canEncode: true,
    sourceRank: 3,
    animation: false,
  },
  {
    id: "heic",
    universal: false,
    rowScales: [1],
    mime: "image/heic",
    mimeAliases: ["image/heif"],
    extensions: ["heic", "heif"],
    supportsAlpha: true,
    canDecode: true,
    canEncode: false,
    sourceRank: 4,
    animation: false,
  },
  {
    id: "webp",
    universal: false,
    rowScales: [8, 4, 2, 1],
    mime: "image/webp",
    mimeAliases: [],
    extensions: ["webp"],
    supportsAlpha: true,
    canDecode: true,
    canEncode: true,
    sourceRank: 2,
    animation: true,
  },
  {
    id: "jpg",
    universal: true,
    rowScales: [8, 4, 2, 1],
    mime: "image/jpeg",
    mimeAliases: ["image/jpg", "image/pjpeg"],
    extensions: ["jpg", "jpeg"],
    supportsAlpha: false,
    canDecode: true,
    canEncode: true,
    sourceRank: 1,
    animation: false,
  },
  {
    id: "png",
    universal: true,
    rowScales: [1],
    mime: "image/png",
    mimeAliases: [],
    extensions: ["png"],
    supportsAlpha: true,
    canDecode: true,
    canEncode: true,
    sourceRank: 0,
    animation: false,
  },
  {
    // GIF89a (W3C 1990). Decoded by our giflib build frame by frame; never encoded (a GIF
    // original is served as it is, at its own size), so it is last in the server's priority.
    id: "gif",
    universal: true,
    rowScales: [1],
    mime: "image/gif",
    mimeAliases: [],
    extensions: ["gif"],
    supportsAlpha: true,
    canDecode: true,
    canEncode: false,
    sourceRank: 5,
    animation: true,
  },
];

const byId = new Map<string, FormatSpec>(SPECS.map((s) => [s.id, s]));
const byExtension = new Map<string, FormatSpec>(
  SPECS.flatMap((s) => s.extensions.map((e) => [e, s] as const)),
);

export const ALL_FORMATS: readonly FormatId[] = SPECS.map((s) => s.id);

export function formatSpec(id: FormatId): FormatSpec {
  return byId.get(id)!;
}

/** Case-insensitive; accepts aliases (`jpeg`, `heif`). */
export function formatFromExtension(ext: string): FormatSpec | undefined {
  return byExtension.get(ext.toLowerCase());
}

/** Formats are named in caplists and config the same way as extensions. */
export const formatFromToken = formatFromExtension;

export function canonicalExtension(id: FormatId): string {
  return formatSpec(id).extensions[0];
}
