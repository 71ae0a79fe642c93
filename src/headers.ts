/**
 * @module headers
 * Reads an image's format and dimensions from its first bytes, without decoding. This is the
 * guard against decompression bombs: @jsquash/jpeg will happily allocate 1.12 GB for a
 * 20000x14000 JPEG, so nothing may reach a decoder before its header has been read here.
 */
import { av1SequenceSize, hevcConfigSize, type CodedSize } from "./bitstream";
import type { FormatId } from "./formats";

export interface ImageHeader {
  format: FormatId;
  width: number;
  height: number;
  /** Whether the header declares an alpha channel (PNG colour type, WebP VP8X/VP8L flag). */
  hasAlpha: boolean;
  /** Whether the file declares more than one frame (GIF, APNG acTL, WebP animation flag, avis). */
  animated: boolean;
  /**
   * Animated GIF and WebP: the frames counted in the bytes at hand and the pixels their
   * decode pays for, the larger of canvas x frames and the frames' own declared areas (a GIF
   * frame may declare 65535x65535 in a 1x1 canvas; giflib allocates it). Counted by walking
   * the blocks, never decoding: the guard against 40,000-frame bombs.
   */
  animation?: { frames: number; pixels: number };
  /**
   * Display transforms to apply after decoding, in order, each an EXIF orientation value
   * (2..8): from the EXIF Orientation tag (JPEG, WebP, PNG) or from HEIF irot/imir (AVIF, HEIC).
   */
  orientation: number[];
  /** HEIF clean aperture (clap): the displayed region, in stored pixels, applied before `orientation`. */
  clap?: Rect;
  /** JPEG only: what decoding holds in memory besides rows (see produce/budget). */
  jpeg?: JpegLayout;
  /**
   * HEIF only: the height of the rows its decoder hands over at once, a grid's tile height
   * (ISO/IEC 23008-12 6.6.2.3), or the whole height for a single coded image.
   */
  bandHeight?: number;
  /** PNG only: Adam7 interlacing, which makes a decoder hold the whole image (see codecs/png). */
  interlaced?: boolean;
  /**
   * WebP only: a lossless (VP8L) bitstream, whose decoder keeps the whole image at full size
   * (its backward references reach anywhere above); a lossy one decodes by macroblock rows.
   */
  lossless?: boolean;
}

export interface JpegLayout {
  /**
   * Whether the image arrives in more than one scan (progressive, or components in separate
   * scans): libjpeg then keeps every DCT coefficient of the image until the last scan.
   */
  multiScan: boolean;
  /** DCT coefficients per pixel over all components (4:2:0 colour: 1.5; greyscale: 1). */
  coefficientsPerPixel: number;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Size as displayed: after the clean aperture and any quarter-turn. */
export function displaySize(h: ImageHeader): { width: number; height: number } {
  const w = h.clap?.width ?? h.width;
  const hh = h.clap?.height ?? h.height;
  const turns = h.orientation.filter((o) => o >= 5).length;
  return turns % 2 ? { width: hh, height: w } : { width: w, height: hh };
}

/** Bytes a caller should fetch to be able to read any supported header. */
export const HEADER_PROBE_BYTES = 64 * 1024;

export class HeaderError extends Error {}

/**
 * Returns null when the bytes are not a format we know; throws HeaderError when they are but
 * the header is truncated or inconsistent.
 */
export function readHeader(bytes: Uint8Array): ImageHeader | null {
  const format = sniffFormat(bytes);
  if (!format) return null;
  const header = PARSERS[format](bytes);
  if (!(header.width > 0 && header.height > 0)) {
    throw new HeaderError(`${format} header declares ${header.width}x${header.height}`);
  }
  return header;
}

/** Decides the format from magic bytes alone. */
export function sniffFormat(b: Uint8Array): FormatId | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpg";
  if (b.length >= 8 && ascii(b, 1, 3) === "PNG" && b[0] === 0x89 && b[4] === 0x0d) return "png";
  if (b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") return "webp";
  if (b.length >= 12 && ascii(b, 4, 4) === "ftyp") return isobmffBrandFormat(b);
  if (b.length >= 6 && (ascii(b, 0, 6) === "GIF89a" || ascii(b, 0, 6) === "GIF87a")) return "gif";
  return null;
}

const PARSERS: Record<FormatId, (b: Uint8Array) => ImageHeader> = {
  jpg: parseJpeg,
  png: parsePng,
  webp: parseWebp,
  avif: (b) => parseIsobmff(b, "avif"),
  heic: (b) => parseIsobmff(b, "heic"),
  gif: parseGif,
};

/**
 * GIF89a: the logical screen descriptor (section 18) gives the canvas; the blocks after it
 * are walked without decompressing anything: extensions (section 23's Graphic Control
 * Extension carries the transparency flag) and image descriptors (section 20), each followed
 * by its data sub-blocks (section 15). Walks as far as the bytes at hand go.
 */
function parseGif(b: Uint8Array): ImageHeader {
  need(b, 13, "GIF logical screen descriptor");
  const width = u16le(b, 6);
  const height = u16le(b, 8);
  let i = 13 + (b[10] & 0x80 ? 3 << ((b[10] & 7) + 1) : 0);
  let frames = 0;
  let frameArea = 0;
  let hasAlpha = false;
  const skipSubBlocks = (at: number) => {
    while (at < b.length && b[at] !== 0) at += b[at] + 1;
    return at + 1;
  };
  while (i < b.length) {
    const introducer = b[i];
    if (introducer === 0x3b) break; // trailer
    if (introducer === 0x21) {
      // Graphic Control Extension: 21 F9 04 packed delay(2) transparent-index 00; bit 0 of packed.
      if (b[i + 1] === 0xf9 && i + 3 < b.length && b[i + 3] & 1) hasAlpha = true;
      i = skipSubBlocks(i + 2);
    } else if (introducer === 0x2c) {
      if (i + 10 > b.length) break;
      frames++;
      frameArea += u16le(b, i + 5) * u16le(b, i + 7);
      const packed = b[i + 9];
      i += 10 + (packed & 0x80 ? 3 << ((packed & 7) + 1) : 0);
      // The LZW minimum code size, then the image data's sub-blocks.
      i = skipSubBlocks(i + 1);
    } else {
      // Anything else is not a GIF block: decoders stop here too.
      break;
    }
  }
  return {
    format: "gif",
    width,
    height,
    hasAlpha,
    animated: frames > 1,
    orientation: [],
    animation: { frames, pixels: Math.max(width * height * frames, frameArea) },
  };
}

/** How many pixels decoding every frame of an animated source pays for (stills: one canvas). */
export function animationPixels(h: ImageHeader): number {
  return h.animated && h.animation ? h.animation.pixels : h.width * h.height;
}

function ascii(b: Uint8Array, at: number, len: number): string {
  let s = "";
  for (let i = at; i < at + len && i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function need(b: Uint8Array, end: number, what: string): void {
  if (end > b.length) throw new HeaderError(`truncated ${what}`);
}

const u16be = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
const u16le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8);
const u24le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
const u32le = (b: Uint8Array, i: number) => u24le(b, i) + b[i + 3] * 2 ** 24;

// ITU T.81 B.1.1.3: SOFn markers are C0-CF except DHT (C4), JPG (C8) and DAC (CC).
function isSof(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/**
 * From the SOF segment at `i` (T.81 B.2.2: Nf components, each with H and V sampling factors)
 * and the first SOS after it (B.2.3: Ns components in that scan). SOF2/6/10/14 are progressive;
 * a first scan with fewer components than the frame means more scans follow. When the SOS is
 * not found in the bytes at hand, the costlier answer is given.
 */
function jpegLayout(b: Uint8Array, i: number, marker: number): JpegLayout {
  const nf = b[i + 7];
  const fields: { h: number; v: number }[] = [];
  for (let c = 0; c < nf && i + 10 + c * 3 < b.length; c++) fields.push({ h: b[i + 9 + c * 3] >> 4, v: b[i + 9 + c * 3] & 15 });
  const hMax = Math.max(1, ...fields.map((f) => f.h));
  const vMax = Math.max(1, ...fields.map((f) => f.v));
  const coefficientsPerPixel = fields.length ? fields.reduce((sum, f) => sum + (f.h * f.v) / (hMax * vMax), 0) : nf;
  const progressive = marker === 0xc2 || marker === 0xc6 || marker === 0xca || marker === 0xce;
  let firstScanComponents = -1;
  for (let j = i + u16be(b, i); j + 4 < b.length; ) {
    if (b[j] !== 0xff) break;
    const m = b[j + 1];
    if (m === 0xff) {
      j++;
      continue;
    }
    if (m === 0xda) {
      firstScanComponents = b[j + 4];
      break;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      j += 2;
      continue;
    }
    j += 2 + u16be(b, j + 2);
  }
  return { multiScan: progressive || firstScanComponents !== nf, coefficientsPerPixel };
}

function parseJpeg(b: Uint8Array): ImageHeader {
  let i = 2;
  let orientation: number[] = [];
  for (;;) {
    need(b, i + 2, "JPEG marker");
    if (b[i] !== 0xff) throw new HeaderError("JPEG marker expected");
    let marker = b[i + 1];
    // T.81 B.1.1.2: any number of 0xFF fill bytes may precede a marker.
    while (marker === 0xff) {
      i++;
      need(b, i + 2, "JPEG marker");
      marker = b[i + 1];
    }
    i += 2;
    // Standalone markers carry no length: TEM, RSTn, SOI.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;
    if (marker === 0xd9 || marker === 0xda) throw new HeaderError("JPEG has no frame header before scan");
    need(b, i + 2, "JPEG segment length");
    const len = u16be(b, i);
    if (len < 2) throw new HeaderError("JPEG segment length < 2");
    if (isSof(marker)) {
      need(b, i + 8, "JPEG SOF");
      return { format: "jpg", height: u16be(b, i + 3), width: u16be(b, i + 5), hasAlpha: false, animated: false, orientation, jpeg: jpegLayout(b, i, marker) };
    }
    // APP1 "Exif\0\0" (CIPA DC-008 4.7.2) carries the TIFF structure with the Orientation tag.
    if (marker === 0xe1 && ascii(b, i + 2, 6) === "Exif\u0000\u0000") {
      orientation = exifOrientation(b.subarray(i + 8, Math.min(b.length, i + len)));
    }
    i += len;
  }
}

function parsePng(b: Uint8Array): ImageHeader {
  // PNG spec 5.3: IHDR must be the first chunk, 13 bytes long.
  need(b, 33, "PNG IHDR");
  if (ascii(b, 12, 4) !== "IHDR") throw new HeaderError("PNG first chunk is not IHDR");
  const colourType = b[25];
  let hasAlpha = colourType === 4 || colourType === 6;
  let animated = false;
  let orientation: number[] = [];
  // Walk the chunk headers for tRNS (alpha on palette/grey/RGB), acTL (APNG) and eXIf
  // (PNG 1.5 extension: EXIF, possibly after the image data).
  let i = 8;
  while (i + 8 <= b.length) {
    const len = u32be(b, i);
    const type = ascii(b, i + 4, 4);
    if (type === "IEND") break;
    if (type === "tRNS") hasAlpha = true;
    if (type === "acTL") animated = true;
    if (type === "eXIf") orientation = exifOrientation(b.subarray(i + 8, Math.min(b.length, i + 8 + len)));
    i += 12 + len;
  }
  return { format: "png", width: u32be(b, 16), height: u32be(b, 20), hasAlpha, animated, orientation, interlaced: b[28] === 1 };
}

function parseWebp(b: Uint8Array): ImageHeader {
  need(b, 30, "WebP chunk header");
  const chunk = ascii(b, 12, 4);
  if (chunk === "VP8X") {
    const flags = b[20];
    const width = u24le(b, 24) + 1;
    const height = u24le(b, 27) + 1;
    return {
      format: "webp",
      width,
      height,
      hasAlpha: (flags & 0x10) !== 0,
      animated: (flags & 0x02) !== 0,
      animation: flags & 0x02 ? webpAnimation(b, width, height) : undefined,
      // The EXIF chunk usually follows the image data (WebP container spec, "Extended format").
      orientation: flags & 0x08 ? webpExifOrientation(b) : [],
      // Unknown when the image chunk is past the bytes at hand: the costlier answer.
      lossless: webpChunk(b, "VP8 ") === undefined,
    };
  }
  if (chunk === "VP8L") {
    // WebP lossless bitstream spec 3.1: signature 0x2f then 14-bit width-1, 14-bit height-1, alpha bit.
    if (b[20] !== 0x2f) throw new HeaderError("VP8L signature missing");
    const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
    return {
      format: "webp",
      width: (bits & 0x3fff) + 1,
      height: ((bits >>> 14) & 0x3fff) + 1,
      hasAlpha: ((bits >>> 28) & 1) === 1,
      animated: false,
      orientation: [],
      lossless: true,
    };
  }
  if (chunk === "VP8 ") {
    // RFC 6386 9.1: keyframe start code 9d 01 2a, then 14-bit width and height.
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) throw new HeaderError("VP8 start code missing");
    return { format: "webp", width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff, hasAlpha: false, animated: false, orientation: [], lossless: false };
  }
  throw new HeaderError(`unknown WebP chunk ${JSON.stringify(chunk)}`);
}

/** The body of the first RIFF chunk of `type` in a WebP file, if within the bytes at hand. */
function webpChunk(b: Uint8Array, type: string): Uint8Array | undefined {
  let i = 12;
  while (i + 8 <= b.length) {
    const len = b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24);
    if (len < 0) return undefined;
    if (ascii(b, i, 4) === type) return b.subarray(i + 8, Math.min(b.length, i + 8 + len));
    i += 8 + len + (len & 1);
  }
  return undefined;
}

/**
 * ANMF chunks (WebP container spec, "Animation"): each frame's size is at bytes 6-11 of its
 * payload (24-bit width-1, height-1).
 */
function webpAnimation(b: Uint8Array, width: number, height: number): { frames: number; pixels: number } {
  let frames = 0;
  let frameArea = 0;
  for (let i = 12; i + 8 <= b.length; ) {
    const len = u32le(b, i + 4);
    if (ascii(b, i, 4) === "ANMF" && i + 8 + 12 <= b.length) {
      frames++;
      frameArea += (u24le(b, i + 8 + 6) + 1) * (u24le(b, i + 8 + 9) + 1);
    }
    i += 8 + len + (len & 1);
  }
  return { frames, pixels: Math.max(width * height * frames, frameArea) };
}

function webpExifOrientation(b: Uint8Array): number[] {
  let body = webpChunk(b, "EXIF");
  if (!body) return [];
  // Some writers keep JPEG's "Exif\0\0" prefix in the chunk.
  if (ascii(body, 0, 6) === "Exif\u0000\u0000") body = body.subarray(6);
  return exifOrientation(body);
}

/**
 * The Orientation tag (0x0112) of IFD0 in a TIFF structure (TIFF 6.0 section 2; EXIF 2.3
 * 4.6.4). Returns [] for 1, absent, malformed or out-of-range values: a bad tag never fails
 * an image.
 */
function exifOrientation(t: Uint8Array): number[] {
  if (t.length < 8) return [];
  const le = t[0] === 0x49 && t[1] === 0x49;
  if (!le && !(t[0] === 0x4d && t[1] === 0x4d)) return [];
  const u16 = (i: number) => (le ? t[i] | (t[i + 1] << 8) : (t[i] << 8) | t[i + 1]);
  const u32 = (i: number) => (le ? (t[i] | (t[i + 1] << 8) | (t[i + 2] << 16)) + t[i + 3] * 2 ** 24 : t[i] * 2 ** 24 + ((t[i + 1] << 16) | (t[i + 2] << 8) | t[i + 3]));
  if (u16(2) !== 42) return [];
  const ifd = u32(4);
  if (ifd + 2 > t.length) return [];
  const count = u16(ifd);
  for (let e = 0; e < count; e++) {
    const at = ifd + 2 + e * 12;
    if (at + 12 > t.length) return [];
    if (u16(at) === 0x0112) {
      const v = u16(at + 8);
      return v >= 2 && v <= 8 ? [v] : [];
    }
  }
  return [];
}

const AVIF_BRANDS = new Set(["avif", "avis"]);
const HEIC_BRANDS = new Set(["heic", "heix", "heim", "heis", "hevc", "hevx"]);

function isobmffBrandFormat(b: Uint8Array): FormatId | null {
  const size = u32be(b, 0);
  const end = Math.min(b.length, Math.max(size, 16));
  const brands = [ascii(b, 8, 4)];
  for (let i = 16; i + 4 <= end; i += 4) brands.push(ascii(b, i, 4));
  // The major brand decides when it is specific; otherwise any compatible brand does.
  if (AVIF_BRANDS.has(brands[0])) return "avif";
  if (HEIC_BRANDS.has(brands[0])) return "heic";
  if (brands.some((x) => AVIF_BRANDS.has(x))) return "avif";
  if (brands.some((x) => HEIC_BRANDS.has(x))) return "heic";
  return null;
}

interface Box {
  type: string;
  start: number;
  /** First byte of the payload. */
  body: number;
  end: number;
}

function* boxes(b: Uint8Array, from: number, to: number): Generator<Box> {
  let i = from;
  while (i + 8 <= to) {
    let size = u32be(b, i);
    const type = ascii(b, i + 4, 4);
    let body = i + 8;
    if (size === 1) {
      need(b, i + 16, "ISOBMFF largesize");
      const hi = u32be(b, i + 8);
      if (hi !== 0) throw new HeaderError("ISOBMFF box larger than 4 GiB");
      size = u32be(b, i + 12);
      body = i + 16;
    } else if (size === 0) {
      size = to - i;
    }
    if (size < body - i) throw new HeaderError(`ISOBMFF box ${type} too small`);
    yield { type, start: i, body, end: Math.min(i + size, to) };
    i += size;
  }
}

function child(b: Uint8Array, parent: Box, type: string, skip = 0): Box | undefined {
  for (const box of boxes(b, parent.body + skip, parent.end)) if (box.type === type) return box;
  return undefined;
}

/**
 * ISO/IEC 23008-12 (HEIF, which AVIF profiles): the primary item (pitm) has its size in an
 * `ispe` property associated through `ipma`. Grids carry the full canvas size there too.
 */
function parseIsobmff(b: Uint8Array, format: FormatId): ImageHeader {
  const ftypBrands = ascii(b, 8, 4);
  let meta: Box | undefined;
  for (const box of boxes(b, 0, b.length)) {
    if (box.type === "meta") {
      meta = box;
      break;
    }
  }
  if (!meta) throw new HeaderError("ISOBMFF meta box missing");
  // meta, pitm, ipma and ispe are FullBoxes: 4 bytes of version and flags precede their payload.
  const pitm = child(b, meta, "pitm", 4);
  const iprp = child(b, meta, "iprp", 4);
  const ipco = iprp && child(b, iprp, "ipco");
  if (!ipco) throw new HeaderError("ISOBMFF ipco box missing");
  const props: Box[] = [...boxes(b, ipco.body, ipco.end)];
  const primary = pitm ? (b[pitm.body] === 0 ? u16be(b, pitm.body + 4) : u32be(b, pitm.body + 4)) : 1;
  const assoc = iprp && child(b, iprp, "ipma");
  const primaryProps = assoc ? associatedProperties(b, assoc, primary) : [];
  const hasAlphaAux = props.some((p) => p.type === "auxC" && ascii(b, p.body + 4, p.end - p.body - 4).includes("alpha"));
  let ispe = primaryProps.map((n) => props[n - 1]).find((p) => p?.type === "ispe");
  if (!ispe) {
    // Fall back to the largest declared size so an odd file is over-estimated, not under.
    let best = 0;
    for (const p of props) {
      if (p.type !== "ispe") continue;
      need(b, p.body + 12, "ispe");
      const area = u32be(b, p.body + 4) * u32be(b, p.body + 8);
      if (area >= best) {
        best = area;
        ispe = p;
      }
    }
  }
  if (!ispe) throw new HeaderError("ISOBMFF ispe property missing");
  need(b, ispe.body + 12, "ispe");
  const width = u32be(b, ispe.body + 4);
  const height = u32be(b, ispe.body + 8);
  // Transformative properties apply in the order they are associated (HEIF 6.5.1).
  const orientation: number[] = [];
  let clap: Rect | undefined;
  for (const n of primaryProps) {
    const p = props[n - 1];
    if (!p) continue;
    if (p.type === "irot") {
      need(b, p.body + 1, "irot");
      // HEIF 6.5.10: angle * 90 degrees anti-clockwise; as EXIF orientations: 90 ccw is 8, 270 ccw is 6.
      const turn = [0, 8, 3, 6][b[p.body] & 3];
      if (turn) orientation.push(turn);
    } else if (p.type === "imir") {
      need(b, p.body + 1, "imir");
      // ISO/IEC 23008-12:2022 6.5.12 `mode`: 0 exchanges top and bottom (EXIF 4), 1 left and
      // right (EXIF 2). Checked against link-u's kimono.mirror-* files.
      orientation.push(b[p.body] & 1 ? 2 : 4);
    } else if (p.type === "clap") {
      clap = cleanAperture(b, p, width, height);
    }
  }
  // A grid's tiles carry their own (smaller) ispe; the tallest such bounds the band (a
  // thumbnail counted by mistake only over-estimates).
  let bandHeight = height;
  if (itemType(b, meta, primary) === "grid") {
    bandHeight = 0;
    for (const p of props) {
      if (p.type !== "ispe" || p === ispe || p.body + 12 > b.length) continue;
      const h = u32be(b, p.body + 8);
      if (h < height && u32be(b, p.body + 4) <= width) bandHeight = Math.max(bandHeight, h);
    }
    if (bandHeight === 0) bandHeight = height;
  }
  checkCodedSizes(b, meta, props, iprp && child(b, iprp, "ipma"), { width, height });
  return {
    format,
    width,
    height,
    hasAlpha: hasAlphaAux,
    animated: ftypBrands === "avis" || ftypBrands === "heis" || ftypBrands === "hevc",
    orientation,
    clap,
    bandHeight,
  };
}

/**
 * The primary item of a HEIF file in memory (AVIF, HEIC), for re-wrapping a coded image in
 * another container (codecs/avif's grid): its item_type, its data (single extent), the whole
 * boxes of the properties associated with it, and how many items the file has.
 */
export function primaryItem(b: Uint8Array): { type: string; data: Uint8Array; properties: { type: string; bytes: Uint8Array }[]; itemCount: number } {
  const meta = [...boxes(b, 0, b.length)].find((x) => x.type === "meta");
  if (!meta) throw new HeaderError("ISOBMFF meta box missing");
  const pitm = child(b, meta, "pitm", 4);
  const iprp = child(b, meta, "iprp", 4);
  const ipco = iprp && child(b, iprp, "ipco");
  const ipma = iprp && child(b, iprp, "ipma");
  if (!pitm || !ipco || !ipma) throw new HeaderError("ISOBMFF pitm/ipco/ipma missing");
  const id = b[pitm.body] === 0 ? u16be(b, pitm.body + 4) : u32be(b, pitm.body + 4);
  const type = itemType(b, meta, id);
  const at = itemLocations(b, meta).get(id);
  if (!type || !at || at.end > b.length) throw new HeaderError(`ISOBMFF item ${id} has no data`);
  const props = [...boxes(b, ipco.body, ipco.end)];
  const properties = associatedProperties(b, ipma, id)
    .map((n) => props[n - 1])
    .filter((x): x is Box => !!x)
    .map((x) => ({ type: x.type, bytes: b.subarray(x.start, x.end) }));
  return { type, data: b.subarray(at.start, at.end), properties, itemCount: items(b, meta).length };
}

/** Items and their item_type from `iinf`/`infe` (ISO/IEC 14496-12 8.11.6; infe version 2 or 3). */
function items(b: Uint8Array, meta: Box): { id: number; type: string }[] {
  const iinf = child(b, meta, "iinf", 4);
  if (!iinf || iinf.body + 2 > b.length) return [];
  const skip = b[iinf.body] === 0 ? 6 : 8;
  const out = [];
  for (const infe of boxes(b, iinf.body + skip, iinf.end)) {
    if (infe.type !== "infe" || infe.body + 12 > b.length) continue;
    const version = b[infe.body];
    if (version < 2) continue;
    const id = version === 2 ? u16be(b, infe.body + 4) : u32be(b, infe.body + 4);
    out.push({ id, type: ascii(b, infe.body + (version === 2 ? 8 : 10), 4) });
  }
  return out;
}

function itemType(b: Uint8Array, meta: Box, id: number): string | undefined {
  return items(b, meta).find((i) => i.id === id)?.type;
}

/**
 * Where each item's data starts and ends (its first extent), from `iloc` (ISO/IEC 14496-12
 * 8.11.3): construction method 0 is a file offset, 1 an offset into `idat`.
 */
function itemLocations(b: Uint8Array, meta: Box): Map<number, { start: number; end: number }> {
  const out = new Map<number, { start: number; end: number }>();
  const iloc = child(b, meta, "iloc", 4);
  if (!iloc) return out;
  const idat = child(b, meta, "idat", 4);
  const version = b[iloc.body];
  let i = iloc.body + 4;
  const read = (size: number) => {
    need(b, i + size, "iloc");
    const v = size === 0 ? 0 : size === 2 ? u16be(b, i) : size === 4 ? u32be(b, i) : u32be(b, i) * 2 ** 32 + u32be(b, i + 4);
    i += size;
    return v;
  };
  const sizes = read(2);
  const [offsetSize, lengthSize, baseSize, indexSize] = [sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15, version > 0 ? sizes & 15 : 0];
  const count = read(version < 2 ? 2 : 4);
  for (let n = 0; n < count && i < iloc.end; n++) {
    const id = read(version < 2 ? 2 : 4);
    const method = version > 0 ? read(2) & 15 : 0;
    read(2); // data_reference_index
    const base = read(baseSize);
    const extents = read(2);
    let first: { start: number; end: number } | undefined;
    for (let e = 0; e < extents; e++) {
      if (indexSize) read(indexSize);
      const offset = read(offsetSize);
      const length = read(lengthSize);
      if (e > 0) continue;
      const origin = method === 0 ? 0 : method === 1 && idat ? idat.body : NaN;
      // Length 0 means "to the end of the file" (8.11.3.3).
      if (!Number.isNaN(origin)) first = { start: origin + base + offset, end: length ? origin + base + offset + length : b.length };
    }
    if (first) out.set(id, first);
  }
  return out;
}

/** Beyond the declared size, what a coded picture may add: alignment to coding blocks, cropped by the conformance window. */
const CODED_SLACK = 64;

/**
 * Every coded item (AV1 or HEVC: the primary image, grid tiles, alpha, thumbnails) must code
 * no larger a picture than the container declares for it (its `ispe`, else the canvas): the
 * decoder allocates from the stream's own headers, not from `ispe`. Data beyond the bytes at
 * hand (a header probe) is left to the full check on delivery.
 */
function checkCodedSizes(b: Uint8Array, meta: Box, props: Box[], ipma: Box | undefined, canvas: CodedSize): void {
  const coded = items(b, meta).filter((it) => it.type === "av01" || it.type === "hvc1");
  if (!coded.length) return;
  const locations = itemLocations(b, meta);
  for (const it of coded) {
    const own = (ipma ? associatedProperties(b, ipma, it.id) : []).map((n) => props[n - 1]).filter((p): p is Box => !!p);
    const ispe = own.find((p) => p.type === "ispe");
    const declared = ispe && ispe.body + 12 <= b.length ? { width: u32be(b, ispe.body + 4), height: u32be(b, ispe.body + 8) } : canvas;
    let size: CodedSize | null = null;
    try {
      if (it.type === "hvc1") {
        const hvcC = own.find((p) => p.type === "hvcC");
        if (hvcC) size = hevcConfigSize(b, hvcC.body, hvcC.end);
      } else {
        const at = locations.get(it.id);
        if (at && at.start < b.length) size = av1SequenceSize(b, at.start, Math.min(at.end, b.length));
        const av1C = own.find((p) => p.type === "av1C");
        // av1C's configOBUs may repeat the sequence header (ISO/IEC AV1-ISOBMFF 2.3.3).
        if (!size && av1C && av1C.body + 4 < av1C.end) size = av1SequenceSize(b, av1C.body + 4, av1C.end);
      }
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      const at = locations.get(it.id);
      // Cut off by the probe, not by the file: decided on delivery, with the whole file.
      if (it.type === "av01" && at && at.end > b.length) continue;
      throw new HeaderError(`${it.type} item ${it.id}: ${e.message}`);
    }
    if (size && (size.width > declared.width + CODED_SLACK || size.height > declared.height + CODED_SLACK)) {
      throw new HeaderError(`${it.type} item ${it.id} codes ${size.width}x${size.height} where the container declares ${declared.width}x${declared.height}`);
    }
  }
}

/** ISO/IEC 14496-12 12.1.4: a centred aperture of rational size, offset from the centre. */
function cleanAperture(b: Uint8Array, p: Box, width: number, height: number): Rect | undefined {
  need(b, p.body + 32, "clap");
  const r = (i: number, signed: boolean) => {
    const n = u32be(b, p.body + i * 8);
    const d = u32be(b, p.body + i * 8 + 4);
    return d === 0 ? NaN : (signed ? n | 0 : n) / d;
  };
  const w = r(0, false);
  const h = r(1, false);
  const cx = r(2, true) + (width - 1) / 2;
  const cy = r(3, true) + (height - 1) / 2;
  const x = Math.round(cx - (w - 1) / 2);
  const y = Math.round(cy - (h - 1) / 2);
  const rect = { x, y, width: Math.round(w), height: Math.round(h) };
  // An aperture outside the image (or a zero denominator) is ignored rather than trusted.
  if (!(rect.width > 0 && rect.height > 0 && x >= 0 && y >= 0 && x + rect.width <= width && y + rect.height <= height)) return undefined;
  return rect;
}

/** 1-based indices into ipco of the properties associated with `itemId`. */
function associatedProperties(b: Uint8Array, ipma: Box, itemId: number): number[] {
  const version = b[ipma.body];
  const flags = b[ipma.body + 3];
  let i = ipma.body + 4;
  need(b, i + 4, "ipma");
  const count = u32be(b, i);
  i += 4;
  for (let e = 0; e < count && i < ipma.end; e++) {
    const id = version < 1 ? u16be(b, i) : u32be(b, i);
    i += version < 1 ? 2 : 4;
    const n = b[i++];
    const out: number[] = [];
    for (let k = 0; k < n; k++) {
      if (flags & 1) {
        out.push(u16be(b, i) & 0x7fff);
        i += 2;
      } else {
        out.push(b[i] & 0x7f);
        i += 1;
      }
    }
    if (id === itemId) return out;
  }
  return [];
}
