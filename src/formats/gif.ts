/**
 * @module formats/gif
 * GIF (GIF89a, W3C 1990), everything about it: magic bytes, header probe (walking the blocks to
 * count frames), codec and its cost. Decoded by our giflib build frame by frame (codecs/gif);
 * never encoded: a GIF original is served as it is, at its own size, so it is last in the
 * server's priority.
 */
import { wasmModules } from "../../wasm/modules";
import { firstFrame } from "../codecs/animation";
import { openGif } from "../codecs/gif";
import { ascii, need, u16le, type ImageHeader } from "./probe";
import type { FormatSpec } from "./spec";
import { FORMAT_NAMES } from "./id";

/**
 * GIF89a: the logical screen descriptor (section 18) gives the canvas; the blocks after it
 * are walked without decompressing anything: extensions (section 23's Graphic Control
 * Extension carries the disposal method and the transparency flag of the frame after it) and
 * image descriptors (section 20), each followed by its data sub-blocks (section 15). Walks as
 * far as the bytes at hand go.
 *
 * `hasAlpha` says whether a composited canvas can show a transparent pixel, as browsers
 * composite: the canvas starts transparent, so when the first frame leaves part of it
 * uncovered or has a transparent colour; or when a frame is disposed to the background (which
 * browsers clear to transparent), or the first is disposed to "previous" (the empty canvas).
 * A transparent colour in a later frame over an opaque canvas shows the pixels below: that is
 * how GIF optimisers code unchanged pixels, and it leaves the animation opaque.
 */
function parseGif(b: Uint8Array): ImageHeader {
  need(b, 13, "GIF logical screen descriptor");
  const width = u16le(b, 6);
  const height = u16le(b, 8);
  let i = 13 + (b[10] & 0x80 ? 3 << ((b[10] & 7) + 1) : 0);
  let frames = 0;
  let frameArea = 0;
  let hasAlpha = false;
  // The Graphic Control Extension applying to the next frame: disposal method and transparency.
  let disposal = 0;
  let transparent = false;
  const skipSubBlocks = (at: number) => {
    while (at < b.length && b[at] !== 0) at += b[at] + 1;
    return at + 1;
  };
  while (i < b.length) {
    const introducer = b[i];
    if (introducer === 0x3b) break; // trailer
    if (introducer === 0x21) {
      // Graphic Control Extension: 21 F9 04 packed delay(2) transparent-index 00; packed bits
      // 2-4 are the disposal method, bit 0 the transparency flag.
      if (b[i + 1] === 0xf9 && i + 3 < b.length) {
        disposal = (b[i + 3] >> 2) & 7;
        transparent = (b[i + 3] & 1) === 1;
      }
      i = skipSubBlocks(i + 2);
    } else if (introducer === 0x2c) {
      if (i + 10 > b.length) break;
      frames++;
      const [left, top, fw, fh] = [u16le(b, i + 1), u16le(b, i + 3), u16le(b, i + 5), u16le(b, i + 7)];
      frameArea += fw * fh;
      const covers = left === 0 && top === 0 && fw >= width && fh >= height;
      if (frames === 1 && (transparent || !covers || disposal === 3)) hasAlpha = true;
      if (disposal === 2) hasAlpha = true;
      disposal = 0;
      transparent = false;
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

export const gif: FormatSpec = {
  ...FORMAT_NAMES.gif,
  universal: true,
  rowScales: [1],
  mime: "image/gif",
  mimeAliases: [],
  supportsAlpha: true,
  canDecode: true,
  sourceRank: 5,
  sniff: (b) => b.length >= 6 && (ascii(b, 0, 6) === "GIF89a" || ascii(b, 0, 6) === "GIF87a"),
  parseHeader: parseGif,
  codecs: {
    // A still is the first frame.
    rows: (bytes) => firstFrame(openGif(bytes)),
    frames: openGif,
  },
  cost: {
    decodeMsPerMp: 15,
    // Frames larger than the logical screen are decoded whole (LZW is sequential) and clipped.
    structureMs: (h) => (15 * Math.max(0, (h.animation?.pixels ?? 0) - (h.animation?.frames ?? 1) * h.width * h.height)) / 1e6,
    encodeMsPerMp: Infinity,
    encodeMemory: () => Infinity,
    // The first frame: giflib's memory (its 2 MiB start, codecs/standalone) and one frame's
    // indices (clipped to the screen), the canvas and its copy.
    streamedDecoder: (header) => ({ decoderBytes: 2.2e6 + header.width * header.height, bandBytes: 8 * header.width * header.height }),
    // giflib: 1 MiB and one frame's indices; the JS canvas and the copy kept under a disposal-3 frame.
    frameDecoder: (_sourceBytes, canvasPixels) => ({ decoderBytes: 2.2e6 + canvasPixels, canvasBytes: 8 * canvasPixels }),
    instances: { rows: () => wasmModules.gif, frames: wasmModules.gif },
  },
};
