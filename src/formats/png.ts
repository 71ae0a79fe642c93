/**
 * @module formats/png
 * PNG (ISO/IEC 15948, W3C PNG 3rd edition), everything about it: magic bytes, header probe
 * (IHDR, tRNS, acTL, eXIf), codecs and their cost. Decoded in JS a band of rows at a time
 * (codecs/png); encoded by @jsquash/png (oxipng's encoder).
 */
import pngEncode, { init as initPngEncode } from "@jsquash/png/encode.js";
import { wasmModules } from "../../wasm/modules";
import { openPng, pngDecodeBytes } from "../codecs/png";
import { ascii, exifOrientation, HeaderError, need, u32be, type ImageHeader } from "./probe";
import { linear, type FormatSpec } from "./spec";
import { FORMAT_NAMES } from "./id";
import { pngColour } from "./colour-tag";

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

/**
 * The module-wide PNG encoder instance (wasm-bindgen glue cannot be instantiated twice), so its
 * memory persists and is counted in every job that encodes PNG. It only ever sees our own
 * output-sized pixels; decoding is ours (codecs/png), in JS.
 */
let pngExports: Promise<{ memory: WebAssembly.Memory }> | undefined;
function pngEncoder(): Promise<{ memory: WebAssembly.Memory }> {
  pngExports ??= (initPngEncode(wasmModules.png) as unknown as Promise<{ memory: WebAssembly.Memory }>).catch((e) => {
    pngExports = undefined;
    throw e;
  });
  return pngExports;
}

export const png: FormatSpec = {
  ...FORMAT_NAMES.png,
  universal: true,
  rowScales: [1],
  mime: "image/png",
  mimeAliases: [],
  supportsAlpha: true,
  canDecode: true,
  sourceRank: 0,
  // PNG spec 5.2: the signature 89 50 4E 47 0D 0A 1A 0A.
  colourTag: pngColour,
  sniff: (b) => b.length >= 8 && ascii(b, 1, 3) === "PNG" && b[0] === 0x89 && b[4] === 0x0d,
  parseHeader: parsePng,
  codecs: {
    rows: (bytes) => openPng(bytes),
    async encode(pixels, _opts, usage) {
      const mem = (await pngEncoder()).memory;
      const out = await pngEncode(pixels as unknown as Parameters<typeof pngEncode>[0]);
      usage.persist(mem.buffer.byteLength);
      usage.note(0, pixels.data.byteLength + out.byteLength);
      return out;
    },
  },
  cost: {
    decodeMsPerMp: 25,
    encodeMsPerMp: 80,
    encodeMemory: (pixels) => linear({ floor: 9e6, base: 2e6, perPixel: 7.2 }, pixels),
    // Decoded in JS: no WASM, the rows it keeps (all of them when interlaced).
    streamedDecoder: (header) => ({ decoderBytes: 0, bandBytes: pngDecodeBytes(header.width, header.height, !!header.interlaced) }),
  },
};
