/**
 * @module formats/avif
 * AVIF (AV1 Image File Format 1.1, on HEIF), everything about it: magic bytes (ftyp brands),
 * header probe (formats/isobmff), codecs and their cost. Decoded and encoded by @jsquash/avif
 * (libavif with dav1d and libaom) a whole image at a time; large outputs are written as a grid
 * of 512x512 tiles (codecs/avif).
 */
import avifDecFactory from "@jsquash/avif/codec/dec/avif_dec.js";
import avifEncFactory from "@jsquash/avif/codec/enc/avif_enc.js";
import { defaultOptions as avifDefaults } from "@jsquash/avif/meta.js";
import { wasmModules } from "../../wasm/modules";
import { AVIF_TILE, avifGridEncoder } from "../codecs/avif";
import { avifSequenceStill, openAvifSequence } from "../codecs/av1dec";
import { avifSequenceEncoder } from "../codecs/av1seq";
import { decodeOnce, encodeOnce } from "../codecs/emscripten";
import { isobmffBrandFormat, parseIsobmff, sequenceSummary } from "./isobmff";
import { ascii } from "./probe";
import type { SequenceShape } from "./probe";
import { linear, type FormatSpec } from "./spec";

/**
 * Relative encode time by libaom cpu-used 0..10 (8 = 1), measured with the @jsquash build
 * (issue 16): at q50 on Kodak 6 = 2.35, 5 = 12.2, 4 = 20. 5 is the background re-encode's speed,
 * so it is priced from the bench at the calibrated qualities instead: cpu-used 5 took 14-19x
 * cpu-used 8, which itself ran 1.6-2x encodeMsPerMp at q80 (15 s per megapixel in all, = 30).
 * The slower ones are extrapolated.
 */
const SPEED_FACTOR = [90, 70, 55, 40, 30, 30, 2.35, 1.6, 1, 0.8, 0.6];

/**
 * @jsquash/avif's decoder peak, measured (bytes, 1/4/12/24 MP): 24.2M/72.5M/191M/370.8M; its
 * encoder's: 42.3M/156.2M/433.5M/847.6M.
 */
const DECODER_MEMORY = { floor: 25e6, base: 14e6, perPixel: 15.3 };
const ENCODER_MEMORY = { floor: 43e6, base: 20e6, perPixel: 35.5 };

/**
 * libaom's decoder (codecs/av1dec) for image sequences: per track (colour, alpha) its
 * reference frames with 64-pixel borders, 16-bit at 10 and 12 bits; the RGBA canvas; one
 * sample. Measured in workerd on our own 8-bit opaque sequences: 18.3 MiB of WASM memory at
 * 800x600, 52.3 MiB at 1920x1080 (30 and 21 bytes per pixel besides the canvas).
 */
const sequenceDecoderMemory = (pixels: number, seq: SequenceShape) => 3e6 + 4 * pixels + 32 * pixels * (seq.tracks ?? 1) * (seq.highBitDepth ? 2 : 1);

/** An AV1 image sequence (major brand `avis`) with a colour track. */
const isSequence = (b: Uint8Array) => ascii(b, 8, 4) === "avis" && sequenceSummary(b) !== null;

export const avif: FormatSpec = {
  id: "avif",
  universal: false,
  mime: "image/avif",
  mimeAliases: [],
  extensions: ["avif"],
  supportsAlpha: true,
  canDecode: true,
  canEncode: true,
  sourceRank: 3,
  // libaom's cpu-used 0-10.
  maxSpeed: 10,
  sniff: (b) => b.length >= 12 && ascii(b, 4, 4) === "ftyp" && isobmffBrandFormat(b) === "avif",
  parseHeader: (b) => parseIsobmff(b, "avif"),
  codecs: {
    // An image sequence's still is its first frame (our decoder, as its animation is); any
    // other AVIF through libavif (the embind decode's second argument: 8 bits per channel out).
    decode: async (bytes, usage) => (isSequence(new Uint8Array(bytes)) ? avifSequenceStill(bytes, usage) : decodeOnce(avifDecFactory, wasmModules.avifDec, bytes, [8], usage)),
    encode: (pixels, o, usage) => encodeOnce(avifEncFactory, wasmModules.avifEnc, pixels, { ...avifDefaults, quality: o.quality, speed: o.speed }, usage),
    // A grid of opaque tiles, each turned upright before coding.
    rowEncoder: {
      small: true,
      takes: (_orientation, alpha) => !alpha,
      open: (w, h, orientation, _alpha, o) => avifGridEncoder(w, h, orientation, o),
    },
    // An AV1 image sequence (animated AVIF) decoded frame by frame by our libaom decoder
    // build, its alpha track included.
    frames: openAvifSequence,
    // An AV1 image sequence (animated AVIF) by our libaom build, lossy only; transparency as
    // an alpha track.
    animationEncoder: (w, h, loop, o) => avifSequenceEncoder(w, h, loop, o),
    animationAlpha: true,
    animationLossless: false,
    // Its boxes (meta with the first frame as an item, moov, sample tables) take about 1 KB: a
    // 1x1 or 10x10 GIF came out 7-22x its bytes as AVIF where WebP kept 0.1-1.1x (bench 6).
    animationMinPixels: 64 * 64,
    // An alpha track adds ~0.7 KB of boxes and its own coded frames. The test pan cut out as a
    // disc (transparent outside), AVIF with alpha vs lossy animated WebP: 160x120 1.19x, 200x150
    // 1.05x, 240x180 0.90x, 320x240 0.54x, 480x360 0.46x.
    animationAlphaMinPixels: 200 * 200,
  },
  cost: {
    decodeMsPerMp: 100,
    encodeMsPerMp: 500,
    speedFactor: (speed) => SPEED_FACTOR[speed] ?? 1,
    encodeMemory: (pixels) => linear(ENCODER_MEMORY, pixels),
    // A sequence's still comes from our frame decoder (codecs.decode above).
    decodeMemory: (pixels, seq) => (seq ? sequenceDecoderMemory(pixels, seq) : linear(DECODER_MEMORY, pixels)),
    /**
     * The grid: one @jsquash/avif instance coding tiles of at most 512x512 (16 MiB whatever the
     * image), a band of 512 stored rows and one tile of RGBA, and the coded tiles (0.15 bytes a
     * pixel at q80 for a 12 MP photo; 0.2 priced).
     */
    rowEncoderMemory: (pixels, longSide) => 17e6 + 4 * longSide * AVIF_TILE + 4 * AVIF_TILE * AVIF_TILE + 0.2 * pixels,
    /**
     * Tiles code slower per pixel than one picture (each restarts libaom's analysis): 12 MP took
     * 9.0 s in Node and 10.8 s in workerd (decode included) at q80 speed 8.
     */
    rowEncodeMsPerMp: 900,
    /**
     * libaom (codecs/av1seq, real-time mode, no lookahead), measured in Node at q80 cpu-used 8
     * on the synthetic pans: WASM memory 9.2 MiB at 320x240, 12.4 at 480x270, 29.3 at 800x600
     * (its reference frames, each with a 288-pixel border), so 6.8 MB and 60 bytes per output
     * pixel with a margin; plus the coded frames kept in JS (0.11 bytes per pixel per frame for
     * the 800x600 pan; 0.25 priced). The alpha track's monochrome encoder in the same instance
     * almost doubles it (measured with and without: 9.2 -> 16.5 MiB at 320x240, 12.4 -> 22.7 at
     * 480x270, 29.3 -> 54.3 at 800x600), so it is priced as a second colour encoder.
     */
    animationEncodeMemory: (outputPixels, frames, alpha) => (alpha ? 2 : 1) * (6.8e6 + 60 * outputPixels) + 0.25 * outputPixels * frames,
    frameDecoder: (_sourceBytes, canvasPixels, seq) => ({ decoderBytes: sequenceDecoderMemory(canvasPixels, seq), canvasBytes: 0 }),
    /**
     * 134-185 ms per megapixel of frames in workerd (libaom without SIMD, noisy 800x600 and
     * 1080p frames; colour conversion included); the 800x600x50 pan's 2.6 MB AVIF took ~190
     * (bench 6b: 10.0 s to animated WebP, of which the WebP encode ~5.4 s as from the GIF).
     */
    frameDecodeMsPerMp: 200,
    /** 380-500 ms per megapixel of frames in Node (the three pans), about 1 s at 160x120 in workerd. */
    animationEncodeMsPerMp: 600,
    /** The alpha track: 3-19% longer in Node on translucent synthetic animations (320x240 to 800x600). */
    animationAlphaCpuFactor: 1.25,
  },
};
