/**
 * @module variants/key
 * Object naming shared by delivery, R2 and the edge cache:
 * `<stem>.<ext>` is a full-size image, `<stem>_<W>_<H>.<ext>` a W x H variant.
 */
import { badRequest } from "../errors";
import { canonicalExtension, formatFromExtension, type FormatId } from "../formats";

/**
 * A requested variant: its size (0 on one side means "keep the aspect ratio") and the options
 * that shape its pixels or bytes (variants/options parses them from the query). Every option is
 * part of the variant's name (`variantKey`), so R2, the edge cache, purges and jobs tell variants
 * apart by name alone. Absent options are the defaults: cover, centred, QUALITY_LEVEL.
 */
export interface Size {
  width: number;
  height: number;
  /** `contain`: fit inside W x H, nothing cut; `pad`: the same on a W x H canvas. Default: cover (crop the overflow). */
  fit?: "contain" | "pad";
  /** `gravity=auto`: the cover crop is placed by content (produce/smart-crop), or by the original's stored focal point. */
  smart?: true;
  /** Where a cover crop is centred, in fractions of the shown image (0,0 top left); default the centre. */
  focus?: { x: number; y: number };
  /** The quality level (a mozjpeg JPEG quality, as QUALITY_LEVEL), instead of the configured one. */
  quality?: number;
  /** The pad canvas and flatten colour, `rrggbb`, instead of FLATTEN_BACKGROUND. */
  background?: string;
}

export interface ImageRequestKey {
  /** The key exactly as requested (URL-decoded), e.g. `covers/a1_666_666.jpeg`. */
  key: string;
  /** `covers/a1`: the name every variant of one image shares. */
  stem: string;
  size: Size | null;
  /** The format the URL's extension names. */
  format: FormatId;
  /** The extension as spelled in the URL (`jpeg` stays `jpeg`). */
  extension: string;
}

/**
 * `_W_H`, then the options in one canonical order: `-contain` or `-pad`, `-f0.30x0.60` (focus),
 * `-q50` (quality level), `-bgffffff` (background), `-auto` (smart crop). `covers/a1_300_200-pad-bg000000.jpg` is a
 * name a client may also ask for directly; the query's options (variants/options) come to it.
 */
const SIZE_SUFFIX = /^(.*)_(\d{1,5})_(\d{1,5})(-contain|-pad)?(?:-f([01]\.\d\d)x([01]\.\d\d))?(?:-q(\d{1,3}))?(?:-bg([0-9a-f]{6}))?(-auto)?$/;

/** Characters no object key may hold: C0 controls, DEL and backslash. */
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f\\]/;

/** Rejects keys that could escape their prefix or confuse a path-based store. */
export function validateKey(key: string): void {
  if (!key) throw badRequest("bad_key", "The image key is empty.");
  if (new TextEncoder().encode(key).length > 1024) throw badRequest("bad_key", "The image key is longer than 1,024 bytes.");
  if (key.startsWith("/")) throw badRequest("bad_key", "The image key must not start with '/'.");
  if (FORBIDDEN.test(key)) throw badRequest("bad_key", "The image key holds a control character or a backslash.");
  if (key.split("/").some((seg) => seg === ".." || seg === "." || seg === "")) {
    throw badRequest("bad_key", "The image key holds an empty, '.' or '..' path segment.");
  }
  if (RESERVED_PREFIXES.some((p) => key.startsWith(p))) {
    throw badRequest("bad_key", `Keys under ${RESERVED_PREFIXES.join(" and ")} are reserved.`);
  }
}

/** `_api/` is the origin API's path; `_cdn/` holds the worker's own bookkeeping in R2. */
export const RESERVED_PREFIXES = ["_api/", "_cdn/"] as const;

/** Parses a delivery path's key; throws a 400 AppError when it names no image. */
export function parseImageKey(key: string, maxDimension: number): ImageRequestKey {
  validateKey(key);
  const slash = key.lastIndexOf("/");
  const dot = key.lastIndexOf(".");
  if (dot <= slash + 1) throw badRequest("bad_key", "The image key has no file extension.");
  const extension = key.slice(dot + 1);
  const spec = formatFromExtension(extension);
  if (!spec) throw badRequest("bad_extension", `Unknown image extension ".${extension}".`);
  const base = key.slice(0, dot);
  const m = SIZE_SUFFIX.exec(base.slice(slash + 1));
  if (!m || !m[1]) return { key, stem: base, size: null, format: spec.id, extension };
  const width = Number(m[2]);
  const height = Number(m[3]);
  // `_0_0` names the full size, and only with an option (`_0_0-q50`): alone it is the original.
  if (width === 0 && height === 0 && !(m[4] || m[5] !== undefined || m[7] !== undefined || m[8] !== undefined || m[9])) throw badRequest("bad_size", "A size needs a width or a height above 0.");
  if (width > maxDimension || height > maxDimension) {
    throw badRequest("bad_size", `Width and height must be at most ${maxDimension}.`);
  }
  const size: Size = { width, height };
  if (m[4]) size.fit = m[4].slice(1) as Size["fit"];
  if (m[5] !== undefined) size.focus = { x: Number(m[5]), y: Number(m[6]) };
  if (m[7] !== undefined) size.quality = Number(m[7]);
  if (m[8] !== undefined) size.background = m[8];
  if (m[9]) size.smart = true;
  // One name per variant's options: `-f0.50x0.50` (the default) or `-q085` would name one twice.
  // (Sizes spelled `_0100_0100` are the push API's to refuse: variants/key canonical names.)
  // Fit, focus and smart crop shape only a box with both sides, and a fit cuts nothing to place.
  if (size.fit || !(width > 0 && height > 0)) {
    delete size.focus;
    delete size.smart;
  }
  if (!(width > 0 && height > 0)) delete size.fit;
  if (size.focus && size.smart) delete size.smart;
  const options = (suffix: string) => suffix.replace(/^_\d+_\d+/, "");
  if (options(base.slice(slash + 1).slice(m[1].length)) !== options(sizeSuffix(size))) {
    throw badRequest("bad_size", `The size suffix's options are not in canonical form; this variant is named ${base.slice(0, slash + 1)}${m[1]}${sizeSuffix(size)}.${extension}.`);
  }
  if (size.focus && (size.focus.x > 1 || size.focus.y > 1)) throw badRequest("bad_size", "A focus point is two fractions between 0.00 and 1.00.");
  if (size.quality !== undefined && (size.quality < 1 || size.quality > 100)) throw badRequest("bad_size", "A quality is between 1 and 100.");
  return { key, stem: base.slice(0, slash + 1) + m[1], size, format: spec.id, extension };
}

/** `_W_H` and the options that differ from the defaults, in the canonical order of SIZE_SUFFIX. */
export function sizeSuffix(size: Size): string {
  let out = `_${size.width}_${size.height}`;
  if (size.fit) out += `-${size.fit}`;
  if (size.focus && !(size.focus.x === 0.5 && size.focus.y === 0.5)) out += `-f${size.focus.x.toFixed(2)}x${size.focus.y.toFixed(2)}`;
  if (size.quality !== undefined) out += `-q${size.quality}`;
  if (size.background !== undefined) out += `-bg${size.background}`;
  if (size.smart) out += "-auto";
  return out;
}

/** The R2 key of a variant: canonical extension, so `jpeg` and `jpg` requests share objects. */
export function variantKey(stem: string, size: Size | null, format: FormatId): string {
  const suffix = size ? sizeSuffix(size) : "";
  return `${stem}${suffix}.${canonicalExtension(format)}`;
}

/**
 * The edge-cache key of a variant. Built from stem, size and the one negotiated format, never
 * from Accept or caplist, so every client that ends up with the same bytes shares one entry.
 * `generation` names the settings that shape the bytes (see `Config.cacheGeneration`), so a
 * change of quality or background abandons the old entries instead of serving them for a year.
 */
/**
 * `still`: the first frame of an animated source, served only to clients that decode no
 * animated format; kept apart from the variant's own entry (which says "animated source").
 */
export function cacheKeyUrl(origin: string, generation: string, stem: string, size: Size | null, format: FormatId, still = false): string {
  // Each segment escaped whole: `encodeURI` would leave `#` and `?`, cutting every variant of
  // `a/hash#1` down to one URL (a fragment is not part of the cache key, RFC 3986 section 3.5).
  const path = variantKey(stem, size, format).split("/").map(encodeURIComponent).join("/");
  return `${origin}/_variants/${generation}/${path}${still ? "?still" : ""}`;
}
