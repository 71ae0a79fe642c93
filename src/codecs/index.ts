/**
 * @module codecs
 * WASM codecs behind one small interface. Codecs know nothing of HTTP, R2 or config: they take
 * bytes or pixels and options. Each is initialised once per isolate, on first use, from the
 * precompiled modules in `wasm/modules.ts` (never per request: instantiation costs tens of ms).
 */
import avifDecode, { init as initAvifDecode } from "@jsquash/avif/decode.js";
import avifEncode, { init as initAvifEncode } from "@jsquash/avif/encode.js";
import jpegDecode, { init as initJpegDecode } from "@jsquash/jpeg/decode.js";
import jpegEncode, { init as initJpegEncode } from "@jsquash/jpeg/encode.js";
import pngDecode, { init as initPngDecode } from "@jsquash/png/decode.js";
import pngEncode, { init as initPngEncode } from "@jsquash/png/encode.js";
import webpDecode, { init as initWebpDecode } from "@jsquash/webp/decode.js";
import webpEncode, { init as initWebpEncode } from "@jsquash/webp/encode.js";
import resizeImage, { initResize } from "@jsquash/resize";
import { wasmModules } from "../../wasm/modules";
import type { FormatId } from "../formats";
import "./image-data";

export interface Pixels {
  /** RGBA, 8 bits per channel, rows top to bottom. */
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

export interface EncodeOptions {
  quality: number;
  speed: number;
}

/** The DOM ImageData type the packages declare; our plain Pixels has the fields they read. */
type JsquashImage = Parameters<typeof jpegEncode>[0];

interface Codec {
  decode?: (bytes: ArrayBuffer) => Promise<Pixels>;
  encode?: (pixels: Pixels, opts: EncodeOptions) => Promise<ArrayBuffer>;
}

/** Runs `init` once, and again only if the previous attempt failed. */
function once(init: () => Promise<unknown>): () => Promise<void> {
  let ready: Promise<unknown> | undefined;
  return async () => {
    ready ??= init().catch((e) => {
      ready = undefined;
      throw e;
    });
    await ready;
  };
}

const ready = {
  avifDec: once(() => initAvifDecode(wasmModules.avifDec)),
  avifEnc: once(() => initAvifEncode(wasmModules.avifEnc)),
  jpegDec: once(() => initJpegDecode(wasmModules.jpegDec)),
  jpegEnc: once(() => initJpegEncode(wasmModules.jpegEnc)),
  // One wasm-bindgen module serves both PNG directions; each entry point keeps its own handle.
  pngDec: once(() => initPngDecode(wasmModules.png)),
  pngEnc: once(() => initPngEncode(wasmModules.png)),
  webpDec: once(() => initWebpDecode(wasmModules.webpDec)),
  webpEnc: once(() => initWebpEncode(wasmModules.webpEnc)),
  resize: once(() => initResize(wasmModules.resize)),
};

const asPixels = (img: { data: ArrayLike<number>; width: number; height: number }): Pixels => {
  if (!(img.data instanceof Uint8ClampedArray)) throw new Error("decoder returned a non-8-bit image");
  return { data: img.data, width: img.width, height: img.height };
};

const CODECS: Partial<Record<FormatId, Codec>> = {
  avif: {
    decode: async (b) => (await ready.avifDec(), asPixels(await avifDecode(b))),
    encode: async (p, o) => {
      await ready.avifEnc();
      return avifEncode(p as unknown as JsquashImage, { quality: o.quality, speed: o.speed });
    },
  },
  jpg: {
    decode: async (b) => (await ready.jpegDec(), asPixels(await jpegDecode(b))),
    encode: async (p, o) => {
      await ready.jpegEnc();
      return jpegEncode(p as unknown as JsquashImage, { quality: o.quality });
    },
  },
  png: {
    decode: async (b) => (await ready.pngDec(), asPixels(await pngDecode(b))),
    encode: async (p) => {
      await ready.pngEnc();
      return pngEncode(p as unknown as JsquashImage);
    },
  },
  webp: {
    decode: async (b) => (await ready.webpDec(), asPixels(await webpDecode(b))),
    encode: async (p, o) => {
      await ready.webpEnc();
      return webpEncode(p as unknown as JsquashImage, { quality: o.quality, method: o.speed });
    },
  },
};

/**
 * Decodes with the format's WASM decoder. The decoders throw four unrelated kinds (Error,
 * ExitStatus, a bare Number, RuntimeError "Aborted()"); all of them are normalised to Error.
 */
export async function decode(format: FormatId, bytes: ArrayBuffer): Promise<Pixels> {
  const codec = CODECS[format]?.decode;
  if (!codec) throw new Error(`no decoder for ${format}`);
  return normaliseThrow(() => codec(bytes), `${format} decode`);
}

export async function encode(format: FormatId, pixels: Pixels, opts: EncodeOptions): Promise<ArrayBuffer> {
  const codec = CODECS[format]?.encode;
  if (!codec) throw new Error(`no encoder for ${format}`);
  return normaliseThrow(() => codec(pixels, opts), `${format} encode`);
}

/**
 * Resamples to exactly width x height. Lanczos3 in gamma space: linear-light resizing doubles
 * the resizer's memory (measured: 133 MB vs 96 MB for a 1080p job) for a gain few can see.
 */
export async function resize(pixels: Pixels, width: number, height: number): Promise<Pixels> {
  return normaliseThrow(async () => {
    await ready.resize();
    const out = await resizeImage(pixels as unknown as JsquashImage, {
      width,
      height,
      method: "lanczos3",
      fitMethod: "stretch",
      premultiply: true,
      linearRGB: false,
    });
    return asPixels(out);
  }, "resize");
}

async function normaliseThrow<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof Error) throw new Error(`${what} failed: ${e.message}`, { cause: e });
    const detail = typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e);
    throw new Error(`${what} failed: ${detail}`, { cause: e });
  }
}
