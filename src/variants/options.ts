/**
 * @module variants/options
 * The URL's query options, with Cloudflare Images' names (`width`, `height`, `fit`, `gravity`,
 * `quality`, `dpr`, `format`, `background`) and the short aliases peers use (`w`, `h`, `q`,
 * `g`, `f`, `bg`), folded with the path's `_W_H` into one canonical variant (variants/key
 * `sizeSuffix`), which names it in R2 and the edge cache and is what a signature covers. Then
 * the client's hints (`Sec-CH-DPR`, `Sec-CH-Width`, `Save-Data`) adjust it; they are never
 * signed (a device's DPR is not the origin's to know) and are bounded instead. A response names
 * in Vary the hints that changed it: a cache that has the plain variant may hand it to a client
 * that sent a hint (a sharper or larger image, never a broken one), and never the reverse.
 * Every option's rule is here and in docs/api.md "Options"; an unknown option or a bad value is
 * a 400 naming the valid ones.
 */
import { badRequest } from "../errors";
import { formatFromToken, type FormatId } from "../formats";
import { sizeSuffix, type ImageRequestKey, type Size } from "./key";

/** Each option's names, canonical first. */
const NAMES = {
  width: ["width", "w"],
  height: ["height", "h"],
  fit: ["fit"],
  gravity: ["gravity", "g"],
  quality: ["quality", "q"],
  dpr: ["dpr"],
  format: ["format", "f"],
  background: ["background", "bg"],
} as const;
type Option = keyof typeof NAMES;

/** Query parameters that are not options: the format list, the signature, a cache buster, a placeholder (app.ts). */
export const OTHER_PARAMETERS = ["caplist", "sig", "v", "placeholder"] as const;

/** Every query parameter an image URL may carry. */
export const QUERY_PARAMETERS: readonly string[] = [...Object.values(NAMES).flat(), ...OTHER_PARAMETERS];

/** Cloudflare Images' named quality levels, as our quality levels (a mozjpeg JPEG quality). */
const NAMED_QUALITY: Record<string, number> = { high: 90, "medium-high": 85, "medium-low": 80, low: 75 };
const FITS: Record<string, Size["fit"] | "cover"> = { "scale-down": "contain", contain: "contain", cover: "cover", crop: "cover", pad: "pad" };
const SIDES: Record<string, { x: number; y: number }> = { center: { x: 0.5, y: 0.5 }, centre: { x: 0.5, y: 0.5 }, left: { x: 0, y: 0.5 }, right: { x: 1, y: 0.5 }, top: { x: 0.5, y: 0 }, bottom: { x: 0.5, y: 1 } };
/** The highest device pixel ratio honoured (`dpr`, `Sec-CH-DPR`): beyond 3 no phone resolves more. */
export const MAX_DPR = 3;
/** `Save-Data: on` serves at most this quality level (Cloudflare Images' `low`). */
export const SAVE_DATA_QUALITY = 75;

export interface OptionDefaults {
  maxDimension: number;
  /** QUALITY_LEVEL: a `quality` equal to it names the default variant. */
  qualityLevel: number;
  /** FLATTEN_BACKGROUND: a `background` equal to it names the default variant. */
  background: readonly [number, number, number];
}

export interface ClientHints {
  dpr: string | null;
  width: string | null;
  viewportWidth: string | null;
  saveData: string | null;
}

export interface ResolvedRequest {
  /** The variant to serve, options and hints applied. */
  request: ImageRequestKey;
  /** `/<key>` of the variant the URL itself names (options folded in, hints not): what `sig` signs. */
  signedPath: string;
  /** Its size, for the size policy. */
  signedSize: Size | null;
  /** `format=`: the one format asked for, or null for negotiation. */
  format: FormatId | null;
  /** The request headers the variant depended on (for Vary). */
  vary: string[];
}

const list = (names: readonly string[]) => names.map((n) => `"${n}"`).join(", ");

function integer(name: string, raw: string, min: number, max: number): number {
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw badRequest("bad_option", `${name} must be an integer between ${min} and ${max}; got "${raw}".`);
  return Number(raw);
}

/** The device pixel ratio, honoured in steps of 0.5 up to MAX_DPR (each step is one more variant). */
function dprOf(name: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(n > 0) || n > 10) throw badRequest("bad_option", `${name} must be a number between 0 and 10 (honoured up to ${MAX_DPR}); got "${raw}".`);
  return Math.min(MAX_DPR, Math.max(1, Math.round(n * 2) / 2));
}

function hex(raw: string): string {
  const m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(raw.trim());
  if (!m) throw badRequest("bad_option", `background must be a colour like #ffffff, ffffff or #fff; got "${raw}".`);
  const h = m[1].toLowerCase();
  return h.length === 3 ? [...h].map((c) => c + c).join("") : h;
}

/** Reads the query's options; refuses an unknown one, a repeated one, or a bad value. */
function readOptions(params: URLSearchParams): Partial<Record<Option, string>> {
  const out: Partial<Record<Option, string>> = {};
  for (const name of new Set(params.keys())) {
    if ((OTHER_PARAMETERS as readonly string[]).includes(name)) continue;
    const option = (Object.keys(NAMES) as Option[]).find((o) => (NAMES[o] as readonly string[]).includes(name));
    if (!option) {
      // An option this service does not take would be ignored without a word, and the client
      // would get the original's megabytes where it meant a thumbnail.
      throw badRequest("unknown_option", `Unknown query option "${name}". Options: ${list(Object.values(NAMES).map((n) => n.join("/")))}; also ${list(OTHER_PARAMETERS)} (caplist: the formats the client decodes; sig: a URL signature; v: ignored, for cache busting; placeholder: thumbhash or blur).`);
    }
    if (out[option] !== undefined || params.getAll(name).length > 1) throw badRequest("bad_option", `${NAMES[option].join(" / ")} is given twice.`);
    out[option] = params.get(name)!;
  }
  return out;
}

/**
 * The variant a URL names (path `_W_H` and query options), then the client's hints applied:
 * `dpr` or `Sec-CH-DPR` multiplies the size, `width=auto` takes `Sec-CH-Width` (or the viewport
 * times the DPR), `Save-Data: on` caps the quality level.
 */
export function resolveOptions(path: ImageRequestKey, params: URLSearchParams, hints: ClientHints, defaults: OptionDefaults): ResolvedRequest {
  const o = readOptions(params);
  const vary = new Set<string>();
  if ((o.width !== undefined || o.height !== undefined) && path.size) {
    throw badRequest("conflicting_size", `The path names a size (${path.size.width}x${path.size.height}) and the query another: use one of them.`);
  }
  let size: Size | null = path.size ? { ...path.size } : null;
  let autoWidth = false;
  if (o.width !== undefined || o.height !== undefined) {
    autoWidth = o.width === "auto";
    const width = o.width === undefined || autoWidth ? 0 : integer("width", o.width, 1, defaults.maxDimension);
    const height = o.height === undefined ? 0 : integer("height", o.height, 1, defaults.maxDimension);
    size = width || height ? { width, height } : null;
  }
  if (o.fit !== undefined) {
    const fit = FITS[o.fit];
    if (!fit) throw badRequest("bad_option", `fit must be one of ${list(Object.keys(FITS))}; got "${o.fit}".`);
    if (size && fit !== "cover") size.fit = fit;
  }
  if (o.gravity !== undefined) {
    const g = o.gravity.toLowerCase();
    const point = /^([01](?:\.\d+)?)x([01](?:\.\d+)?)$/.exec(g);
    const focus = SIDES[g] ?? (point && Number(point[1]) <= 1 && Number(point[2]) <= 1 ? { x: Number(point[1]), y: Number(point[2]) } : null);
    if (!focus && g !== "auto") throw badRequest("bad_option", `gravity must be "auto", one of ${list(Object.keys(SIDES))} or a focal point XxY in fractions (0.3x0.6); got "${o.gravity}".`);
    // Two decimals: a finer point changes no crop of any size, and would name another variant.
    if (size && focus) size.focus = { x: Math.round(focus.x * 100) / 100, y: Math.round(focus.y * 100) / 100 };
    if (size && !focus) size.smart = true;
  }
  if (o.quality !== undefined) {
    const q = NAMED_QUALITY[o.quality] ?? (/^\d{1,3}$/.test(o.quality) ? Number(o.quality) : NaN);
    if (!(q >= 1 && q <= 100)) throw badRequest("bad_option", `quality must be an integer between 1 and 100 or one of ${list(Object.keys(NAMED_QUALITY))}; got "${o.quality}".`);
    size = withQuality(size, q);
  }
  if (o.background !== undefined) {
    const bg = hex(o.background);
    const [r, g, b] = defaults.background;
    const isDefault = bg === [r, g, b].map((c) => c.toString(16).padStart(2, "0")).join("");
    size = isDefault ? size : { ...(size ?? { width: 0, height: 0 }), background: bg };
  }
  let format: FormatId | null = null;
  if (o.format !== undefined && o.format !== "auto") {
    const spec = formatFromToken(o.format);
    if (!spec) throw badRequest("bad_option", `format must be "auto" or one of avif, webp, jpeg, png, heic, gif; got "${o.format}".`);
    format = spec.id;
  }
  const scaled = (s: Size | null, dpr: number): Size | null => {
    if (!s || dpr === 1 || !(s.width || s.height)) return s;
    const scale = (n: number) => (n ? Math.min(defaults.maxDimension, Math.round(n * dpr)) : 0);
    return { ...s, width: scale(s.width), height: scale(s.height) };
  };
  // The URL's own dpr is part of what it names (and signs); a hint's is applied after.
  if (o.dpr !== undefined) size = scaled(size, dprOf("dpr", o.dpr));
  size = canonical(size, defaults);
  const signedSize = size;
  const signedPath = `/${nameOf(path, size)}`;
  let dpr = 1;

  // The client's hints: scale what the URL names, never sign.
  if (o.dpr === undefined && (size?.width || size?.height || autoWidth)) {
    if (hints.dpr !== null && /^\d+(\.\d+)?$/.test(hints.dpr.trim())) {
      dpr = dprOf("Sec-CH-DPR", hints.dpr.trim());
      vary.add("Sec-CH-DPR");
    }
  }
  if (autoWidth) {
    vary.add("Sec-CH-Width");
    vary.add("Sec-CH-Viewport-Width");
    // Sec-CH-Width is already in device pixels; the viewport is in CSS pixels.
    const w = Number(hints.width ?? NaN);
    const vw = Number(hints.viewportWidth ?? NaN) * dpr;
    const width = w > 0 ? Math.round(w) : vw > 0 ? Math.round(vw) : 0;
    if (width > 0) size = { ...(size ?? { width: 0, height: 0 }), width: Math.round(width / dpr) };
    if (size && !size.width && !size.height) size = size.background || size.quality ? { ...size } : null;
  }
  size = scaled(size, dpr);
  if (hints.saveData?.trim().toLowerCase() === "on") {
    const level = size?.quality ?? defaults.qualityLevel;
    if (level > SAVE_DATA_QUALITY) {
      size = withQuality(size, SAVE_DATA_QUALITY);
      vary.add("Save-Data");
    }
  }
  size = canonical(size, defaults);
  return { request: { ...path, size, key: nameOf(path, size) }, signedPath, signedSize, format, vary: [...vary] };
}

function withQuality(size: Size | null, quality: number): Size {
  return { ...(size ?? { width: 0, height: 0 }), quality };
}

/** Drops what names no change (the configured quality and background, a size of only defaults). */
function canonical(size: Size | null, defaults: OptionDefaults): Size | null {
  if (!size) return null;
  const out = { ...size };
  if (out.quality === defaults.qualityLevel) delete out.quality;
  if (!(out.width > 0 && out.height > 0)) {
    // Fit, focus and smart crop shape only a box with both sides.
    delete out.fit;
    delete out.focus;
    delete out.smart;
  }
  if (out.fit) {
    delete out.focus;
    delete out.smart;
  }
  if (out.focus && out.focus.x === 0.5 && out.focus.y === 0.5) delete out.focus;
  if (!out.width && !out.height && out.quality === undefined && out.background === undefined) return null;
  return out;
}

/** The variant's name: the path's stem, the canonical suffix, the URL's own extension. */
function nameOf(path: ImageRequestKey, size: Size | null): string {
  return `${path.stem}${size ? sizeSuffix(size) : ""}.${path.extension}`;
}

/**
 * `placeholder=blur`: a 32 px image at quality level 40 (a few hundred bytes; pages scale it up
 * under a CSS blur), as the options that name it. Fixed and bounded, so no size policy applies.
 */
export const BLUR_OPTIONS = { width: "32", height: "32", fit: "contain", quality: "40" } as const;
