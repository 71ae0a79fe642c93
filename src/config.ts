/**
 * @module config
 * The one place that reads `env`. `loadConfig` turns the `[vars]` of wrangler.toml into a fully
 * defaulted, validated `Config`, or throws a ConfigError naming the variable and what was
 * expected (sharp's style: "Expected ... but received ...").
 */
import { ConfigError } from "./errors";
import { FORMAT_IDS, formatName, formatNameFromToken, type FormatId } from "./formats/id";
import { isPrivateHost } from "./net";
import { QUALITY_LADDER, QUALITY_LEVELS, type QualityLevel } from "./produce/quality-ladder";

export interface EncodeSettings {
  /** 0-100, the codec's own quality scale. */
  quality: number;
  /** AVIF: libaom cpu-used 0 (slowest) - 10; WebP: method 0 (fastest) - 6. Unused by JPEG/PNG. */
  speed: number;
  /**
   * Per-image quality (PER_IMAGE_QUALITY, produce/perceptual): the quality level (a mozjpeg JPEG
   * quality) whose SSIMULACRA 2 score on each image the output must reach; `quality` is then
   * where the search starts. Absent: `quality` is used as it is.
   */
  target?: number;
}

export interface OriginConfig {
  /** The base URL, ending in `/`: a key `covers/a1.jpg` is fetched from `<base>covers/a1.jpg`. */
  base: string;
  /**
   * Extensions tried, in order, after the URL's own when the origin has no file of that name
   * (a `_W_H.avif` URL names the output format, not the original's).
   */
  extensions: string[];
  /** The longest one origin fetch may take, headers and body. */
  timeoutMs: number;
}

export interface Config {
  /** Server preference when several formats are acceptable, best first. */
  priority: FormatId[];
  /** Formats the worker may produce on demand when neither cache nor R2 has them. */
  onDemand: Set<FormatId>;
  /** Formats whose on-demand results are also stored in R2 (see README: why AVIF only). */
  writeBack: Set<FormatId>;
  encode: Record<FormatId, EncodeSettings>;
  /**
   * The slow background re-encode of on-demand variants (jobs/reencode): which written-back
   * formats get it, with what settings, after how many requests seen by one isolate.
   */
  reencode: { formats: Set<FormatId>; encode: Partial<Record<FormatId, EncodeSettings>>; minRequests: number };
  /** Largest width or height a client may ask for with `_W_H`. */
  maxDimension: number;
  /** Sources above this many pixels (read from the header) are never decoded. */
  maxSourcePixels: number;
  /** Which pages may read images (CORS): `*`, or the origins listed. */
  corsOrigin: "*" | string[];
  /** QUALITY_LEVEL: the quality level (a mozjpeg JPEG quality) every default quality derives from. */
  qualityLevel: number;
  /** Cache-Control sent with successful image responses. */
  cacheControl: string;
  /** How long the edge cache keeps a variant, in seconds. */
  edgeTtl: number;
  /** Bearer tokens accepted by `/_api/` (several, for rotation). Empty: the API refuses all. */
  apiTokens: string[];
  /**
   * Most frames an animated source may have (read from its header, before any decode): a
   * 40,000-frame GIF of 1x1 images is a CPU bomb however few its pixels. Its pixels over all
   * frames count against `maxSourcePixels` (imgproxy's rule).
   */
  maxAnimationFrames: number;
  /** Largest upload body, in bytes. */
  maxUploadBytes: number;
  /** Largest upload, in pixels and per side, read from its header. */
  maxUploadPixels: number;
  maxUploadDimension: number;
  /**
   * Whole-job memory all jobs of an isolate may hold at once, and so one job at most
   * (Cloudflare kills an isolate above 128 MB); the rest is headroom for the runtime and hits.
   */
  memoryBudgetBytes: number;
  /** How long a job waits for room under the memory budget before the chain moves on. */
  admissionWaitMs: number;
  /** The longest a finished job's leftovers (JS buffers, dropped instances) count when V8 has not reported them collected. */
  memoryReleaseMs: number;
  /** Predicted CPU a request may spend producing; costlier formats are deferred. */
  cpuBudgetMs: number;
  /** Predicted CPU a deferred background production may spend; costlier ones never run. */
  backgroundCpuBudgetMs: number;
  /**
   * The platform's CPU limit per invocation (wrangler.toml `limits.cpu_ms`, paid plan): when no
   * candidate can be served within `cpuBudgetMs`, the best deferred one is produced now if it
   * is predicted under this.
   */
  cpuLimitMs: number;
  /** Send the diagnostic headers X-Image-Peak-Memory (the job's measured WASM high-water mark) and X-Image-Quality (what per-image quality chose). */
  exposePeakMemory: boolean;
  /** Which `_W_H` sizes may be requested: any, the allowlist, or the allowlist plus signed URLs. */
  sizePolicy: "open" | "allowlist" | "signed";
  allowedSizes: { width: number; height: number }[];
  /** HMAC keys for `?sig=` (several, for rotation); a secret. */
  signingKeys: string[];
  /** RGB that transparent pixels are flattened onto when only a format without alpha can be served. */
  flattenBackground: readonly [number, number, number];
  /**
   * A short hash of every setting that changes produced bytes (quality, speed, background),
   * part of each edge-cache key: changing one of them starts a fresh set of entries.
   */
  cacheGeneration: string;
  /** Serve the playground at `/_demo`. */
  demoPage: boolean;
  /** First delay before a failed job callback is retried; it doubles each time. */
  callbackRetryBaseSeconds: number;
  /** Accept notify_url hosts on loopback and private networks (tests, a local origin in dev). */
  callbackPrivateHosts: boolean;
  /**
   * The pull-through origin (ORIGIN_URL): where an original missing from R2 is fetched, checked
   * as a push is, and stored. Null: every original must be pushed.
   */
  origin: OriginConfig | null;
  /** Callback deliveries before giving up (recorded in the job's state). */
  callbackMaxAttempts: number;
  /**
   * Deliveries of a job's message that fail for a temporary reason (R2 down, isolate full)
   * before the job is finished as failed; each retry waits twice as long as the one before.
   */
  jobMaxDeliveries: number;
}

/** The subset of the Worker's env that holds configuration (all `[vars]` are strings here). */
export type ConfigVars = Partial<Record<string, unknown>>;

export const DEFAULT_VARS = {
  FORMAT_PRIORITY: "avif,heic,webp,jpg,png,gif",
  ON_DEMAND_FORMATS: "avif,webp,jpg,png",
  WRITE_BACK_FORMATS: "avif",
  QUALITY_LEVEL: "85",
  QUALITY: "",
  PER_IMAGE_QUALITY: "avif",
  SPEED: "avif:8,webp:4,jpg:0",
  REENCODE_FORMATS: "avif",
  REENCODE_SPEED: "avif:5,webp:6",
  REENCODE_QUALITY: "",
  REENCODE_MIN_REQUESTS: "2",
  MAX_DIMENSION: "4096",
  MAX_SOURCE_PIXELS: "50000000",
  MAX_ANIMATION_FRAMES: "1000",
  CACHE_CONTROL: "public, max-age=31536000, immutable",
  EDGE_TTL: "31536000",
  API_TOKENS: "",
  MAX_UPLOAD_BYTES: String(25 * 1024 * 1024),
  MAX_UPLOAD_PIXELS: "100000000",
  MAX_UPLOAD_DIMENSION: "16384",
  MEMORY_BUDGET_MB: "112",
  ADMISSION_WAIT_MS: "8000",
  MEMORY_RELEASE_MS: "5000",
  CPU_BUDGET_MS: "1500",
  BACKGROUND_CPU_BUDGET_MS: "20000",
  CPU_LIMIT_MS: "30000",
  PEAK_MEMORY_HEADER: "off",
  SIZE_POLICY: "open",
  ALLOWED_SIZES: "",
  URL_SIGNING_KEYS: "",
  FLATTEN_BACKGROUND: "#ffffff",
  DEMO_PAGE: "off",
  CALLBACK_RETRY_BASE_SECONDS: "5",
  CALLBACK_MAX_ATTEMPTS: "6",
  CALLBACK_PRIVATE_HOSTS: "off",
  JOB_MAX_DELIVERIES: "5",
  CORS_ORIGIN: "*",
  ORIGIN_URL: "",
  ORIGIN_EXTENSIONS: "jpg,png,webp",
  ORIGIN_TIMEOUT_MS: "8000",
  ORIGIN_PRIVATE_HOSTS: "off",
} as const;

type VarName = keyof typeof DEFAULT_VARS;

function read(vars: ConfigVars, name: VarName): string {
  const v = vars[name];
  if (v === undefined || v === null) return DEFAULT_VARS[name];
  if (typeof v === "number") return String(v);
  if (typeof v !== "string") throw new ConfigError(`${name}: expected a string but received ${typeof v}`);
  return v.trim();
}

function formatList(vars: ConfigVars, name: VarName, opts: { encodable?: boolean; nonEmpty?: boolean }): FormatId[] {
  const raw = read(vars, name);
  const out: FormatId[] = [];
  for (const token of raw.split(",").map((t) => t.trim()).filter(Boolean)) {
    const spec = formatNameFromToken(token);
    if (!spec) throw new ConfigError(`${name}: expected formats among ${FORMAT_IDS.join(", ")} but received "${token}"`);
    if (opts.encodable && !spec.canEncode) {
      throw new ConfigError(`${name}: "${token}" has no encoder, so it cannot be produced on demand`);
    }
    if (out.includes(spec.id)) throw new ConfigError(`${name}: "${token}" is listed twice`);
    out.push(spec.id);
  }
  if (opts.nonEmpty && out.length === 0) throw new ConfigError(`${name}: expected at least one format`);
  return out;
}

function integer(vars: ConfigVars, name: VarName, min: number, max: number): number {
  const raw = read(vars, name);
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}: expected an integer between ${min} and ${max} but received "${raw}"`);
  }
  return n;
}

function perFormat(vars: ConfigVars, name: VarName, min: number, max: number): Map<FormatId, number> {
  const out = new Map<FormatId, number>();
  for (const pair of read(vars, name).split(",").map((t) => t.trim()).filter(Boolean)) {
    const [fmt, value] = pair.split(":").map((s) => s.trim());
    const spec = fmt ? formatNameFromToken(fmt) : undefined;
    const n = Number(value);
    if (!spec || !/^\d+$/.test(value ?? "") || n < min || n > max) {
      throw new ConfigError(`${name}: expected "format:integer" pairs with integers between ${min} and ${max} but received "${pair}"`);
    }
    out.set(spec.id, n);
  }
  return out;
}

/** FNV-1a, 32 bits: a stable short name for a settings string, not a security measure. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

function hexColour(vars: ConfigVars, name: VarName): [number, number, number] {
  const raw = read(vars, name);
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(raw);
  if (!m) throw new ConfigError(`${name}: expected a colour like #ffffff but received "${raw}"`);
  return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
}

function onOff(vars: ConfigVars, name: VarName): boolean {
  const raw = read(vars, name).toLowerCase();
  if (raw !== "on" && raw !== "off") throw new ConfigError(`${name}: expected "on" or "off" but received "${raw}"`);
  return raw === "on";
}

function sizePolicy(vars: ConfigVars): Pick<Config, "sizePolicy" | "allowedSizes" | "signingKeys"> {
  const policy = read(vars, "SIZE_POLICY");
  if (policy !== "open" && policy !== "allowlist" && policy !== "signed") {
    throw new ConfigError(`SIZE_POLICY: expected "open", "allowlist" or "signed" but received "${policy}"`);
  }
  const allowedSizes = read(vars, "ALLOWED_SIZES")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const m = /^(\d{1,5})x(\d{1,5})$/.exec(t);
      if (!m || (m[1] === "0" && m[2] === "0")) throw new ConfigError(`ALLOWED_SIZES: expected "WxH" sizes like 405x540 or 300x0 but received "${t}"`);
      return { width: Number(m[1]), height: Number(m[2]) };
    });
  const signingKeys = read(vars, "URL_SIGNING_KEYS").split(",").map((t) => t.trim()).filter(Boolean);
  if (policy === "signed" && signingKeys.length === 0) throw new ConfigError("URL_SIGNING_KEYS: SIZE_POLICY is signed but no key is set");
  if (signingKeys.some((k) => k.length < 32)) throw new ConfigError("URL_SIGNING_KEYS: expected keys of at least 32 characters");
  if (policy === "allowlist" && allowedSizes.length === 0) throw new ConfigError("ALLOWED_SIZES: SIZE_POLICY is allowlist but no size is listed");
  return { sizePolicy: policy, allowedSizes, signingKeys };
}

function apiTokens(vars: ConfigVars): string[] {
  const tokens = read(vars, "API_TOKENS").split(",").map((t) => t.trim()).filter(Boolean);
  for (const t of tokens) {
    // A short token can be guessed; refusing it here beats an API anyone can write to.
    if (t.length < 16) throw new ConfigError("API_TOKENS: expected tokens of at least 16 characters");
  }
  return tokens;
}

/** Each encoder's speed within what it takes (its format module's `maxSpeed`: WebP's method 0-6, JPEG 0-1). */
function checkSpeeds(name: string, settings: Partial<Record<FormatId, EncodeSettings>>): void {
  for (const [id, s] of Object.entries(settings) as [FormatId, EncodeSettings][]) {
    const max = formatName(id).maxSpeed;
    if (max !== undefined && s.speed > max) throw new ConfigError(`${name}: expected ${id} between 0 and ${max} but received ${s.speed}`);
  }
}

function corsOrigin(vars: ConfigVars): "*" | string[] {
  const raw = read(vars, "CORS_ORIGIN");
  if (raw === "*") return "*";
  const origins = raw.split(",").map((t) => t.trim()).filter(Boolean);
  for (const o of origins) {
    // An origin is scheme://host[:port] (RFC 6454), exactly as browsers send it in `Origin`.
    let ok = false;
    try {
      ok = new URL(o).origin === o;
    } catch {}
    if (!ok) throw new ConfigError(`CORS_ORIGIN: expected "*" or origins like https://www.example.com but received "${o}"`);
  }
  if (origins.length === 0) throw new ConfigError(`CORS_ORIGIN: expected "*" or a list of origins but received an empty string`);
  return origins;
}

function origin(vars: ConfigVars): OriginConfig | null {
  const raw = read(vars, "ORIGIN_URL");
  if (!raw) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`ORIGIN_URL: expected an http(s) URL like https://images.example.com/media/ but received "${raw}"`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new ConfigError(`ORIGIN_URL: expected an http(s) URL but received "${raw}"`);
  if (url.username || url.password || url.search || url.hash) throw new ConfigError(`ORIGIN_URL: expected a base URL with no credentials, query or fragment but received "${raw}"`);
  // The operator names the origin, but a loopback or cloud-metadata address is almost always a
  // mistake (or a copied dev value); tests and a local origin in dev say so explicitly.
  if (!onOff(vars, "ORIGIN_PRIVATE_HOSTS") && isPrivateHost(url.hostname)) {
    throw new ConfigError(`ORIGIN_URL: "${url.hostname}" is a loopback, private or metadata address; set ORIGIN_PRIVATE_HOSTS = "on" to allow it`);
  }
  const extensions = read(vars, "ORIGIN_EXTENSIONS").split(",").map((t) => t.trim()).filter(Boolean);
  for (const ext of extensions) {
    const name = formatNameFromToken(ext);
    if (!name || ext !== ext.toLowerCase()) throw new ConfigError(`ORIGIN_EXTENSIONS: expected lower-case extensions among ${FORMAT_IDS.join(", ")} (or jpeg, heif) but received "${ext}"`);
  }
  if (new Set(extensions).size !== extensions.length) throw new ConfigError("ORIGIN_EXTENSIONS: an extension is listed twice");
  const base = url.href.endsWith("/") ? url.href : `${url.href}/`;
  return { base, extensions, timeoutMs: integer(vars, "ORIGIN_TIMEOUT_MS", 100, 60_000) };
}

export function loadConfig(vars: ConfigVars): Config {
  const priority = formatList(vars, "FORMAT_PRIORITY", { nonEmpty: true });
  const onDemand = new Set(formatList(vars, "ON_DEMAND_FORMATS", { encodable: true }));
  const writeBack = new Set(formatList(vars, "WRITE_BACK_FORMATS", { encodable: true }));
  // The perceived-quality target every default quality derives from: "as good as a mozjpeg JPEG
  // at this quality", by SSIM and butteraugli (produce/quality-ladder, README "Quality").
  const qualityLevel = integer(vars, "QUALITY_LEVEL", 1, 100) as QualityLevel;
  if (!QUALITY_LEVELS.includes(qualityLevel)) throw new ConfigError(`QUALITY_LEVEL: expected one of ${QUALITY_LEVELS.join(", ")} but received "${qualityLevel}"`);
  const rung = QUALITY_LADDER[qualityLevel];
  // The calibrated qualities (PNG is lossless: its "quality" is unused); QUALITY overrides them one by one.
  const ladder: Partial<Record<FormatId, number>> = { avif: rung.avifFast, webp: rung.webp, jpg: rung.jpg, png: 100 };
  const quality = perFormat(vars, "QUALITY", 1, 100);
  const speed = perFormat(vars, "SPEED", 0, 10);
  const defaultSpeed = perFormat(DEFAULT_VARS, "SPEED", 0, 10);
  // Formats whose quality is searched per image (produce/perceptual); a QUALITY set for one
  // of them is its fixed quality instead.
  const perImage = new Set(formatList(vars, "PER_IMAGE_QUALITY", { encodable: true }));
  for (const id of perImage) {
    if (formatName(id).qualitySlope === undefined) throw new ConfigError(`PER_IMAGE_QUALITY: "${id}" has no per-image quality search; expected avif or webp`);
  }
  const encode = {} as Record<FormatId, EncodeSettings>;
  for (const id of FORMAT_IDS) {
    encode[id] = {
      quality: quality.get(id) ?? ladder[id] ?? 80,
      speed: speed.get(id) ?? defaultSpeed.get(id) ?? 0,
      ...(perImage.has(id) && !quality.has(id) ? { target: qualityLevel } : {}),
    };
  }
  checkSpeeds("SPEED", encode);
  const reencodeFormats = new Set(formatList(vars, "REENCODE_FORMATS", { encodable: true }));
  const reencodeSpeed = perFormat(vars, "REENCODE_SPEED", 0, 10);
  const reencodeQuality = perFormat(vars, "REENCODE_QUALITY", 1, 100);
  const defaultReencodeSpeed = perFormat(DEFAULT_VARS, "REENCODE_SPEED", 0, 10);
  const reencodeEncode: Partial<Record<FormatId, EncodeSettings>> = {};
  const explicit = vars.REENCODE_FORMATS !== undefined;
  for (const id of reencodeFormats) {
    // The default list follows WRITE_BACK_FORMATS; an explicit one must be consistent with it.
    if (!explicit && !writeBack.has(id)) {
      reencodeFormats.delete(id);
      continue;
    }
    if (id !== "avif" && id !== "webp") throw new ConfigError(`REENCODE_FORMATS: "${id}" has no slower, smaller setting; expected avif or webp`);
    // Only what R2 holds can be replaced: the re-encode works on written-back variants.
    if (!writeBack.has(id)) throw new ConfigError(`REENCODE_FORMATS: "${id}" is not in WRITE_BACK_FORMATS, so no stored variant of it is ever re-encoded`);
    reencodeEncode[id] = {
      // The slow AVIF encoder has its own calibrated quality for the same target; WebP's method
      // changes its bytes far more than its quality, so it keeps the on-demand quality.
      quality: reencodeQuality.get(id) ?? (id === "avif" ? (quality.has("avif") ? encode.avif.quality : rung.avifSlow) : encode[id].quality),
      speed: reencodeSpeed.get(id) ?? defaultReencodeSpeed.get(id) ?? encode[id].speed,
    };
  }
  checkSpeeds("REENCODE_SPEED", reencodeEncode);
  for (const id of writeBack) {
    if (!onDemand.has(id)) throw new ConfigError(`WRITE_BACK_FORMATS: "${id}" is not in ON_DEMAND_FORMATS, so it is never produced`);
  }
  const flattenBackground = hexColour(vars, "FLATTEN_BACKGROUND");
  const cacheControl = read(vars, "CACHE_CONTROL");
  if (!cacheControl) throw new ConfigError("CACHE_CONTROL: expected a Cache-Control value but received an empty string");
  return {
    priority,
    qualityLevel,
    corsOrigin: corsOrigin(vars),
    onDemand,
    writeBack,
    encode,
    reencode: { formats: reencodeFormats, encode: reencodeEncode, minRequests: integer(vars, "REENCODE_MIN_REQUESTS", 1, 1_000_000) },
    // 16383 is the largest side WebP can hold (14-bit fields, RFC 9649 / VP8L spec).
    maxDimension: integer(vars, "MAX_DIMENSION", 1, 16383),
    maxSourcePixels: integer(vars, "MAX_SOURCE_PIXELS", 1, 1_000_000_000),
    maxAnimationFrames: integer(vars, "MAX_ANIMATION_FRAMES", 1, 100_000),
    cacheControl,
    edgeTtl: integer(vars, "EDGE_TTL", 0, 10 * 365 * 86400),
    apiTokens: apiTokens(vars),
    // Workers accept request bodies up to 100 MB on every plan.
    maxUploadBytes: integer(vars, "MAX_UPLOAD_BYTES", 1, 100 * 1024 * 1024),
    maxUploadPixels: integer(vars, "MAX_UPLOAD_PIXELS", 1, 1_000_000_000),
    // AVIF and HEIC allow larger canvases, but 65535 is the JPEG limit (T.81 16-bit fields).
    maxUploadDimension: integer(vars, "MAX_UPLOAD_DIMENSION", 1, 65535),
    memoryBudgetBytes: integer(vars, "MEMORY_BUDGET_MB", 16, 4096) * 1024 * 1024,
    admissionWaitMs: integer(vars, "ADMISSION_WAIT_MS", 0, 60_000),
    memoryReleaseMs: integer(vars, "MEMORY_RELEASE_MS", 0, 60_000),
    cpuBudgetMs: integer(vars, "CPU_BUDGET_MS", 1, 300_000),
    // 300 s is the largest CPU limit a Worker invocation can be given.
    backgroundCpuBudgetMs: integer(vars, "BACKGROUND_CPU_BUDGET_MS", 1, 300_000),
    cpuLimitMs: integer(vars, "CPU_LIMIT_MS", 1, 300_000),
    exposePeakMemory: onOff(vars, "PEAK_MEMORY_HEADER"),
    ...sizePolicy(vars),
    flattenBackground,
    cacheGeneration: `v1-${fnv1a(JSON.stringify([encode, flattenBackground]))}`,
    demoPage: onOff(vars, "DEMO_PAGE"),
    callbackRetryBaseSeconds: integer(vars, "CALLBACK_RETRY_BASE_SECONDS", 0, 3600),
    callbackMaxAttempts: integer(vars, "CALLBACK_MAX_ATTEMPTS", 1, 20),
    callbackPrivateHosts: onOff(vars, "CALLBACK_PRIVATE_HOSTS"),
    // Below the consumer's max_retries in wrangler.toml, so the job, not the platform, decides.
    jobMaxDeliveries: integer(vars, "JOB_MAX_DELIVERIES", 1, 9),
    origin: origin(vars),
  };
}

/**
 * A format's on-demand quality at a quality level (a mozjpeg JPEG quality, as QUALITY_LEVEL):
 * the calibrated ladder's, linear between its rungs (75-90), proportional below them and
 * towards 100 above. What a URL's `quality` option (variants/options) asks for.
 */
export function ladderQuality(level: number, format: FormatId): number {
  if (format === "png" || format === "gif" || format === "heic") return 100;
  const field = format === "avif" ? "avifFast" : format;
  const at = (l: QualityLevel) => QUALITY_LADDER[l][field];
  const levels = [...QUALITY_LEVELS].sort((a, b) => a - b);
  const lo = levels[0];
  const hi = levels[levels.length - 1];
  let q: number;
  if (level <= lo) q = (at(lo) * level) / lo;
  else if (level >= hi) q = at(hi) + ((100 - at(hi)) * (level - hi)) / (100 - hi);
  else {
    const i = levels.findIndex((l) => l >= level);
    const [a, b] = [levels[i - 1], levels[i]];
    q = at(a) + ((at(b) - at(a)) * (level - a)) / (b - a);
  }
  return Math.max(1, Math.min(100, Math.round(q)));
}

/** The encode settings of `format` for a variant: its own quality level when it names one. */
export function encodeFor(config: Config, format: FormatId, variant: { quality?: number } | null): EncodeSettings {
  const settings = config.encode[format];
  if (variant?.quality === undefined) return settings;
  // A level of its own: the search (if any) aims at that level's reference.
  return { ...settings, quality: ladderQuality(variant.quality, format), ...(settings.target !== undefined ? { target: variant.quality } : {}) };
}

/** The pad and flatten colour of a variant: its own `background` when it names one. */
export function backgroundFor(config: Config, variant: { background?: string } | null): readonly [number, number, number] {
  const hex = variant?.background;
  if (!hex) return config.flattenBackground;
  return [parseInt(hex.slice(0, 2), 16), parseInt(hex.slice(2, 4), 16), parseInt(hex.slice(4, 6), 16)];
}
