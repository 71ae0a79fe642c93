/**
 * @module formats/heic
 * HEIC (HEIF with HEVC images, ISO/IEC 23008-12 Annex B), everything about it: magic bytes
 * (ftyp brands), header probe (formats/isobmff), codec and its cost. Decoded by libheif-js tile
 * by tile (codecs/heic); never encoded (no HEVC encoder ships as WASM under a usable licence),
 * so a HEIC is only ever served when an origin produced it.
 */
import { openHeic } from "../codecs/heic";
import { isobmffBrandFormat, parseIsobmff } from "./isobmff";
import { ascii } from "./probe";
import type { FormatSpec } from "./spec";
import { FORMAT_NAMES } from "./id";
import { isobmffColour } from "./colour-tag";

/**
 * libheif-js decoding tile by tile: its 16.25 MiB initial memory holds the file and one tile's
 * work (HEVC picture, YCbCr and RGBA copies, about 8 bytes per tile pixel) for an iPhone grid
 * (measured: PUG1.HEIC never grew it); a single coded image is one big tile.
 */
export function streamedHeicMemory(sourceBytes: number, width: number, bandHeight: number): number {
  return Math.max(17.1e6, 1.15 * (4e6 + sourceBytes + 8 * width * bandHeight));
}

export const heic: FormatSpec = {
  ...FORMAT_NAMES.heic,
  universal: false,
  rowScales: [1],
  mime: "image/heic",
  mimeAliases: ["image/heif"],
  supportsAlpha: true,
  canDecode: true,
  sourceRank: 4,
  colourTag: isobmffColour,
  sniff: (b) => b.length >= 12 && ascii(b, 4, 4) === "ftyp" && isobmffBrandFormat(b) === "heic",
  parseHeader: (b) => parseIsobmff(b, "heic"),
  codecs: {
    rows: (bytes, _denom, expect) => openHeic(bytes, expect),
  },
  cost: {
    decodeMsPerMp: 100,
    encodeMsPerMp: Infinity,
    encodeMemory: () => Infinity,
    // Rows come a grid tile's height at a time (the whole height for a single coded image).
    streamedDecoder: (header, sourceBytes) => {
      const band = header.bandHeight ?? header.height;
      return { decoderBytes: streamedHeicMemory(sourceBytes, header.width, band), bandBytes: 4 * header.width * band };
    },
  },
};
