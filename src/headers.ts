/**
 * @module headers
 * Reads an image's format and dimensions from its first bytes, without decoding. This is the
 * guard against decompression bombs: @jsquash/jpeg will happily allocate 1.12 GB for a
 * 20000x14000 JPEG, so nothing may reach a decoder before its header has been read here. Each
 * format's own probe lives in its module (formats/<name>.ts); this picks it by magic bytes.
 */
import { formatSpec, sniffFormat } from "./formats";
import { HeaderError, type ImageHeader } from "./formats/probe";

export { HeaderError, type ImageHeader, type JpegLayout, type Rect } from "./formats/probe";
export { primaryItem } from "./formats/isobmff";
export { sniffFormat } from "./formats";

/** Size as displayed: after the clean aperture and any quarter-turn. */
export function displaySize(h: ImageHeader): { width: number; height: number } {
  const w = h.clap?.width ?? h.width;
  const hh = h.clap?.height ?? h.height;
  const turns = h.orientation.filter((o) => o >= 5).length;
  return turns % 2 ? { width: hh, height: w } : { width: w, height: hh };
}

/** Bytes a caller should fetch to be able to read any supported header. */
export const HEADER_PROBE_BYTES = 64 * 1024;

/**
 * Returns null when the bytes are not a format we know; throws HeaderError when they are but
 * the header is truncated or inconsistent.
 */
export function readHeader(bytes: Uint8Array): ImageHeader | null {
  const format = sniffFormat(bytes);
  if (!format) return null;
  const header = formatSpec(format).parseHeader(bytes);
  if (!(header.width > 0 && header.height > 0)) {
    throw new HeaderError(`${format} header declares ${header.width}x${header.height}`);
  }
  return header;
}

/** How many pixels decoding every frame of an animated source pays for (stills: one canvas). */
export function animationPixels(h: ImageHeader): number {
  // A GIF of one frame has an `animation` too: its frame may be larger than the screen.
  return h.animation ? Math.max(h.animation.pixels, h.width * h.height) : h.width * h.height;
}
