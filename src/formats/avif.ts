/**
 * @module formats/avif
 * AVIF (AV1 Image File Format 1.1, on HEIF), everything about it: magic bytes (ftyp brands),
 * header probe (formats/isobmff), codecs and their cost. Stills are decoded by @jsquash/avif
 * (libavif with dav1d) a whole image at a time and encoded by our libaom build (codecs/av1seq,
 * all-intra mode, WASM SIMD) in files the worker writes (codecs/avif); large outputs as a grid
 * of tiles of at most 512x512.
 */
import avifDecFactory from "@jsquash/avif/codec/dec/avif_dec.js";
import { wasmModules } from "../../wasm/modules";
import { AVIF_TILE, avifGridEncoder, avifStillEncode, avifTrialDecode, avifTrialEncode } from "../codecs/avif";
import { avifSequenceStill, openAvifSequence } from "../codecs/av1dec";
import { avifSequenceEncoder } from "../codecs/av1seq";
import { decodeOnce } from "../codecs/emscripten";
import { imageSequence, isobmffBrandFormat, parseIsobmff, sequenceSummary } from "./isobmff";
import { ascii } from "./probe";
import type { SequenceShape } from "./probe";
import { linear, type FormatSpec } from "./spec";
import { FORMAT_NAMES } from "./id";
import { isobmffColour } from "./colour-tag";

/**
 * Relative encode time by libaom cpu-used 0..10 (8 = 1). Measured with our all-intra build in
 * Node (800x533 and 800x1067 photos): cpu-used 6 took 2.8x cpu-used 8, cpu-used 5 11-12x
 * (3.8-4.0 s per megapixel, 5 being the background re-encode's speed; @jsquash/avif took 3.5x
 * that); 7 is libaom's next step (1.6, as measured with @jsquash's build in issue 16). The
 * slower ones are extrapolated from @jsquash's build (4 = 20x), where ours was never slower.
 */
const SPEED_FACTOR = [90, 70, 55, 40, 30, 14, 2.8, 1.6, 1, 0.8, 0.6];

/** @jsquash/avif's decoder peak, measured (bytes, 1/4/12/24 MP): 24.2M/72.5M/191M/370.8M. */
const DECODER_MEMORY = { floor: 25e6, base: 14e6, perPixel: 15.3 };

/**
 * Our all-intra encoder's memory (codecs/av1seq, one image; the RGBA canvas included), measured
 * in Node from 64x64 to 3000x2000. At cpu-used 7 and above: 3.0 MiB at 64x64, then 23.7-25.4
 * bytes a pixel above 1 MP (35 at 800x533, 37 at 512x512); the alpha image's monochrome encoder
 * adds 17-18 bytes a pixel (4.6 MiB at 64x64, 24.1 at 800x533, 86.3 at 1080p). At cpu-used 6
 * and below libaom searches more partitions and keeps more: 39-51 bytes a pixel (12.6 MiB at
 * 512x512, 20.7 at 800x533, 77.1 at 1080p), alpha another 33-38 (140.5 MiB at 1080p with
 * alpha). Priced with a 15% margin for growth steps.
 */
const stillEncoderMemory = (pixels: number, alpha: boolean, speed = 8) =>
  speed >= 7 ? 1.15 * (alpha ? 5e6 + 45 * pixels : 3e6 + 26 * pixels) : 1.15 * (alpha ? 5e6 + 80 * pixels : 3e6 + 44 * pixels);

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
  ...FORMAT_NAMES.avif,
  universal: false,
  mime: "image/avif",
  mimeAliases: [],
  supportsAlpha: true,
  canDecode: true,
  sourceRank: 3,
  colourTag: isobmffColour,
  sniff: (b) => b.length >= 12 && ascii(b, 4, 4) === "ftyp" && isobmffBrandFormat(b) === "avif",
  parseHeader: (b) => parseIsobmff(b, "avif"),
  codecs: {
    // An image sequence's still is its first frame (our decoder, as its animation is); any
    // other AVIF through libavif (the embind decode's second argument: 8 bits per channel out).
    decode: async (bytes, usage) =>
      isSequence(new Uint8Array(bytes)) ? avifSequenceStill(bytes, imageSequence(new Uint8Array(bytes)), usage) : decodeOnce(avifDecFactory, wasmModules.avifDec, bytes, [8], usage),
    encode: async (pixels, o, usage) => avifStillEncode(pixels, o, usage),
    // Per-image quality's trials: the bare AV1 image, decoded by our libaom build.
    trial: { encode: avifTrialEncode, decode: avifTrialDecode },
    // A grid of opaque tiles, each turned upright before coding.
    rowEncoder: {
      small: true,
      takes: (_orientation, alpha) => !alpha,
      open: (w, h, orientation, _alpha, o) => avifGridEncoder(w, h, orientation, o),
    },
    // An AV1 image sequence (animated AVIF) decoded frame by frame by our libaom decoder
    // build, its alpha track included.
    frames: (bytes) => openAvifSequence(bytes, imageSequence(new Uint8Array(bytes))),
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
    /**
     * Our all-intra build at cpu-used 8, in Node: 330 ms per megapixel at 800x533, 190 at
     * 1200x800, 150 at 1080p (an instance's set-up is a fixed ~50 ms); @jsquash/avif took 700.
     */
    encodeMsPerMp: 350,
    speedFactor: (speed) => SPEED_FACTOR[speed] ?? 1,
    encodeMemory: stillEncoderMemory,
    // A sequence's still comes from our frame decoder (codecs.decode above).
    decodeMemory: (pixels, seq) => (seq ? sequenceDecoderMemory(pixels, seq) : linear(DECODER_MEMORY, pixels)),
    /**
     * The grid: one encoder instance coding tiles of at most 512x512 (priced as one 512x512
     * image), a band of 512 stored rows and one tile of RGBA, and the coded tiles (0.15 bytes a
     * pixel at q80 for a 12 MP photo; 0.2 priced).
     */
    rowEncoderMemory: (pixels, longSide, _alpha, speed) => stillEncoderMemory(AVIF_TILE * AVIF_TILE, false, speed) + 4 * longSide * AVIF_TILE + 4 * AVIF_TILE * AVIF_TILE + 0.2 * pixels,
    /**
     * Tiles code slower per pixel than one picture (each restarts libaom's analysis): a 512x512
     * tile in 109 ms in Node (415 per megapixel) at cpu-used 8; @jsquash/avif's tiles took 900.
     */
    rowEncodeMsPerMp: 450,
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
     * 134-185 ms per megapixel of frames in workerd with libaom's portable C (noisy 800x600 and
     * 1080p frames; colour conversion included); the 800x600x50 pan's 2.6 MB AVIF took ~190
     * (bench 6b: 10.0 s to animated WebP, of which the WebP encode ~5.4 s as from the GIF).
     * The SIMD build decodes 2.1x faster in Node (libaom alone, 1280x720: 19 instead of 39 ms
     * per megapixel); kept at the measured portable-C rate until measured again in workerd.
     */
    frameDecodeMsPerMp: 200,
    /** 380-500 ms per megapixel of frames in Node (the three pans), about 1 s at 160x120 in workerd. */
    animationEncodeMsPerMp: 600,
    /** The alpha track: 3-19% longer in Node on translucent synthetic animations (320x240 to 800x600). */
    animationAlphaCpuFactor: 1.25,
    instances: {
      // A sequence's still comes from our frame decoder; a still from libavif's (fresh per job).
      decode: (sequence) => (sequence ? wasmModules.av1dec : undefined),
      encode: () => wasmModules.av1seq,
      rowEncoder: wasmModules.av1seq,
      frames: wasmModules.av1dec,
      animationEncoder: wasmModules.av1seq,
    },
  },
};
