/**
 * @module formats/probe
 * What every format's header probe shares: the header it reports, its error, and the byte
 * readers. Each format module (formats/<name>.ts) reads its own header with these; `headers`
 * dispatches by magic bytes.
 */
import type { FormatId } from "./id";

export interface ImageHeader {
  format: FormatId;
  width: number;
  height: number;
  /** Whether the header declares an alpha channel (PNG colour type, WebP VP8X/VP8L flag). */
  hasAlpha: boolean;
  /** Whether the file declares more than one frame (GIF, APNG acTL, WebP animation flag, avis). */
  animated: boolean;
  /**
   * Animated GIF, WebP and AVIF: the frames counted in the bytes at hand (an AVIF's colour
   * track's samples) and the pixels their decode pays for, the larger of canvas x frames and
   * the frames' own declared areas (a GIF frame may declare 65535x65535 in a 1x1 canvas;
   * giflib allocates it). Counted by walking the blocks, never decoding: the guard against
   * 40,000-frame bombs.
   */
  animation?: { frames: number; pixels: number } & SequenceShape;
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

/**
 * AVIF image sequences: what its frame decoder keeps per pixel, a libaom decoder per track
 * (colour, and alpha when it has an alpha track) with 16-bit frame buffers at 10 and 12 bits.
 */
export interface SequenceShape {
  tracks?: number;
  highBitDepth?: boolean;
}

export interface JpegLayout {
  /**
   * Whether the image arrives in more than one scan (progressive, or components in separate
   * scans): libjpeg then keeps every DCT coefficient of the image until the last scan.
   */
  multiScan: boolean;
  /** Each component's sampling factors from the frame header (T.81 B.2.2: H and V); 4:2:0 colour is [2,2],[1,1],[1,1]. */
  sampling: [number, number][];
  /** Scans (SOS segments) in the bytes read: each is a pass of entropy decoding over its components' blocks. */
  scans: number;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export class HeaderError extends Error {}

export function ascii(b: Uint8Array, at: number, len: number): string {
  let s = "";
  for (let i = at; i < at + len && i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

export function need(b: Uint8Array, end: number, what: string): void {
  if (end > b.length) throw new HeaderError(`truncated ${what}`);
}

export const u16be = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
export const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
export const u16le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8);
export const u24le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
export const u32le = (b: Uint8Array, i: number) => u24le(b, i) + b[i + 3] * 2 ** 24;

/**
 * The Orientation tag (0x0112) of IFD0 in a TIFF structure (TIFF 6.0 section 2; EXIF 2.3
 * 4.6.4). Returns [] for 1, absent, malformed or out-of-range values: a bad tag never fails
 * an image.
 */
export function exifOrientation(t: Uint8Array): number[] {
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

/** What a file says about its colours (formats/colour-tag reads it; produce/colour converts). */
export type ColourTag =
  | { icc: Uint8Array }
  /** PNG's iCCP: the profile zlib-compressed (PNG spec 11.3.3.3). */
  | { iccDeflated: Uint8Array }
  /** ITU-T H.273 ColourPrimaries and TransferCharacteristics. */
  | { nclx: { primaries: number; transfer: number } };
