/**
 * @module variants/key
 * Object naming shared by delivery, R2 and the edge cache:
 * `<stem>.<ext>` is a full-size image, `<stem>_<W>_<H>.<ext>` a W x H variant.
 */
import { badRequest } from "../errors";
import { canonicalExtension, formatFromExtension, type FormatId } from "../formats";

/** A requested size. 0 on one side means "keep the aspect ratio". */
export interface Size {
  width: number;
  height: number;
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

const SIZE_SUFFIX = /^(.*)_(\d{1,5})_(\d{1,5})$/;

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
  if (width === 0 && height === 0) throw badRequest("bad_size", "A size needs a width or a height above 0.");
  if (width > maxDimension || height > maxDimension) {
    throw badRequest("bad_size", `Width and height must be at most ${maxDimension}.`);
  }
  return { key, stem: base.slice(0, slash + 1) + m[1], size: { width, height }, format: spec.id, extension };
}

/** The R2 key of a variant: canonical extension, so `jpeg` and `jpg` requests share objects. */
export function variantKey(stem: string, size: Size | null, format: FormatId): string {
  const suffix = size ? `_${size.width}_${size.height}` : "";
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
