/**
 * @module formats/colour-tag
 * What a file says about its colours, read from its container without decoding: an ICC profile
 * (JPEG APP2 `ICC_PROFILE` chunks, PNG `iCCP`, WebP `ICCP`, HEIF/AVIF `colr` `prof`/`rICC`) or
 * H.273 code points (HEIF/AVIF `colr` `nclx`). Each format module names its reader;
 * produce/colour turns the tag into a conversion to sRGB.
 */
import { primaryProperties } from "./isobmff";
import { ascii, u16be as u16, u32be as u32, type ColourTag } from "./probe";

export type { ColourTag } from "./probe";


/**
 * JPEG: the APP2 segments `ICC_PROFILE\0` + sequence number + count + data, concatenated in
 * sequence order (ICC.1:2010 Annex B.4), read up to the first scan. A set with a chunk missing
 * or numbered twice is no profile (served as sRGB).
 */
export function jpegColour(b: Uint8Array): ColourTag | null {
  const chunks = new Map<number, Uint8Array>();
  let count = 0;
  for (let at = 2; at + 4 <= b.length; ) {
    if (b[at] !== 0xff) return null;
    const marker = b[at + 1];
    if (marker === 0xff) {
      at++;
      continue;
    }
    // SOS (the scans) or EOI: the profile, if any, came before.
    if (marker === 0xda || marker === 0xd9) break;
    const len = u16(b, at + 2);
    if (len < 2 || at + 2 + len > b.length) return null;
    if (marker === 0xe2 && len >= 16 && ascii(b, at + 4, 12) === "ICC_PROFILE\0") {
      const seq = b[at + 16];
      count = b[at + 17];
      if (seq === 0 || chunks.has(seq)) return null;
      chunks.set(seq, b.subarray(at + 18, at + 2 + len));
    }
    at += 2 + len;
  }
  if (chunks.size === 0 || chunks.size !== count) return null;
  const parts = [...Array(count).keys()].map((i) => chunks.get(i + 1));
  if (parts.some((p) => !p)) return null;
  const total = parts.reduce((n, p) => n + p!.length, 0);
  // Up to 255 chunks of 64 KiB: a 16 MiB "profile" is a hostile file's, not a camera's.
  if (total > 4 << 20) return null;
  const icc = new Uint8Array(total);
  parts.reduce((at, p) => (icc.set(p!, at), at + p!.length), 0);
  return { icc };
}

/** PNG: `iCCP` (name, NUL, compression method 0, zlib stream) before `IDAT` (PNG spec 11.3.3.3). */
export function pngColour(b: Uint8Array): ColourTag | null {
  for (let at = 8; at + 12 <= b.length; ) {
    const len = u32(b, at);
    const type = ascii(b, at + 4, 4);
    if (type === "IDAT" || at + 12 + len > b.length) return null;
    if (type === "iCCP") {
      const body = b.subarray(at + 8, at + 8 + len);
      const nul = body.indexOf(0);
      if (nul < 1 || nul > 79 || body[nul + 1] !== 0) return null;
      return { iccDeflated: body.subarray(nul + 2) };
    }
    at += 12 + len;
  }
  return null;
}

/** WebP: the extended format's `ICCP` chunk (RIFF, WebP container spec "Color Profile"). */
export function webpColour(b: Uint8Array): ColourTag | null {
  if (b.length < 30 || ascii(b, 12, 4) !== "VP8X" || !(b[20] & 0x20)) return null;
  for (let at = 12; at + 8 <= b.length; ) {
    const len = b[at + 4] | (b[at + 5] << 8) | (b[at + 6] << 16) | (b[at + 7] << 24);
    if (len < 0 || at + 8 + len > b.length) return null;
    if (ascii(b, at, 4) === "ICCP") return { icc: b.subarray(at + 8, at + 8 + len) };
    at += 8 + len + (len & 1);
  }
  return null;
}

/** HEIF/AVIF: the primary item's `colr` property (ISO/IEC 14496-12 12.1.5): `prof`/`rICC` or `nclx`. */
export function isobmffColour(b: Uint8Array): ColourTag | null {
  let props;
  try {
    props = primaryProperties(b);
  } catch {
    return null;
  }
  for (const p of props) {
    if (p.type !== "colr" || p.bytes.length < 12) continue;
    const kind = ascii(p.bytes, 8, 4);
    if (kind === "prof" || kind === "rICC") return { icc: p.bytes.subarray(12) };
    if (kind === "nclx" && p.bytes.length >= 16) return { nclx: { primaries: u16(p.bytes, 12), transfer: u16(p.bytes, 14) } };
  }
  return null;
}
