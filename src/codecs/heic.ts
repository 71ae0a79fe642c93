/**
 * @module codecs/heic
 * HEIC decoding with libheif-js (libheif + libde265 built with emscripten), one fresh instance
 * per job, tile by tile: an iPhone photo is a grid of 512x512 HEVC tiles (ISO/IEC 23008-12
 * 6.6.2.3), and libheif's tile API (`heif_image_handle_decode_image_tile`) decodes one at a time.
 * A row of tiles is assembled into one band and handed on, so the job holds one band, never the
 * whole 12 MP image; measured, the instance stays at its initial 16.25 MiB for PUG1.HEIC.
 *
 * A grid's display transforms (clap, irot, imir) are not applied here: the pipeline applies them
 * from the header, as for AVIF, so the small output is what gets turned. A single coded image
 * is decoded whole and transformed by libheif (which refuses it untransformed when its coded
 * size differs from `ispe`, as with a clap of odd size), and says so (`oriented`).
 *
 * The C API is called through the exports libheif-js keeps (`_heif_*`). Functions returning a
 * `struct heif_error` take a pointer to it as a first, hidden argument (the wasm32 C ABI's sret).
 */
// The CommonJS build: its `require("fs")`, `require("path")` and `require("crypto")` only run
// under Node (they are aliased to an empty module for the Workers bundle; see wrangler.toml).
import libheif from "libheif-js/libheif-wasm/libheif.js";
import { wasmModules } from "../../wasm/modules";
import type { RowDecoder } from "./rows";

type Fn = (...args: number[]) => number;
interface LibHeif {
  HEAP8: Int8Array;
  HEAPU8: Uint8Array;
  HEAP32: Int32Array;
  HEAPU32: Uint32Array;
  _malloc: Fn;
  _heif_context_alloc: Fn;
  _heif_context_read_from_memory_without_copy: Fn;
  _heif_context_get_primary_image_handle: Fn;
  _heif_image_handle_get_image_tiling: Fn;
  _heif_decoding_options_alloc: Fn;
  _heif_image_handle_decode_image_tile: Fn;
  _heif_decode_image: Fn;
  _heif_image_get_width: Fn;
  _heif_image_get_height: Fn;
  _heif_image_get_plane_readonly: Fn;
  _heif_image_release: Fn;
}

// libheif's enums (heif.h): heif_colorspace_RGB, heif_chroma_interleaved_RGBA, heif_channel_interleaved.
const COLORSPACE_RGB = 1;
const CHROMA_INTERLEAVED_RGBA = 11;
const CHANNEL_INTERLEAVED = 10;

function instantiate(): Promise<LibHeif> {
  return new Promise((resolve, reject) => {
    let mod: LibHeif | undefined;
    let ready = false;
    const factory = libheif as unknown as (opts: object) => LibHeif;
    mod = factory({
      instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) {
        const instance = new WebAssembly.Instance(wasmModules.heif, imports);
        done(instance);
        return instance.exports;
      },
      onRuntimeInitialized() {
        ready = true;
        if (mod) resolve(mod);
      },
      onAbort: (what: unknown) => reject(new Error(`libheif aborted: ${String(what)}`)),
      // libheif reports unparseable files on the console; the caller logs a failure once.
      print: () => {},
      printErr: () => {},
    });
    if (ready) resolve(mod);
  });
}

/**
 * Opens the primary image of a HEIF file and checks its tiling against the header's size
 * (`expect`): a grid whose tiles do not cover the declared canvas is refused before any tile is
 * decoded, and so is a tile that decodes to another size than the grid declares.
 */
export async function openHeic(bytes: ArrayBuffer, expect: { width: number; height: number } | null): Promise<RowDecoder> {
  const m = await instantiate();
  const scratch = m._malloc(256);
  const err = scratch; // struct heif_error { code, subcode, message }
  const ptrOut = scratch + 16;
  const strideOut = scratch + 20;
  const tiling = scratch + 64; // struct heif_image_tiling, version 1: 9 x uint32 used
  m.HEAPU8.fill(0, scratch, scratch + 256);
  const check = (what: string) => {
    if (m.HEAP32[err >> 2] !== 0) throw new Error(`libheif: ${what} failed (error ${m.HEAP32[err >> 2]}.${m.HEAP32[(err >> 2) + 1]})`);
  };
  const src = m._malloc(bytes.byteLength);
  if (!src) throw new Error("libheif: out of memory");
  m.HEAPU8.set(new Uint8Array(bytes), src);
  const ctx = m._heif_context_alloc();
  m._heif_context_read_from_memory_without_copy(err, ctx, src, bytes.byteLength, 0);
  check("reading the file");
  m._heif_context_get_primary_image_handle(err, ctx, ptrOut);
  check("finding the primary image");
  const handle = m.HEAP32[ptrOut >> 2];
  m._heif_image_handle_get_image_tiling(err, handle, 0, tiling);
  check("reading the tiling");
  const [, columns, rows, tileWidth, tileHeight, width, height] = m.HEAPU32.subarray(tiling >> 2, (tiling >> 2) + 7);
  if (expect && (width !== expect.width || height !== expect.height)) {
    throw new Error(`HEIF image is ${width}x${height} but its header declares ${expect.width}x${expect.height}`);
  }
  if (columns * tileWidth < width || rows * tileHeight < height || columns * rows === 0) {
    throw new Error(`HEIF grid of ${columns}x${rows} tiles of ${tileWidth}x${tileHeight} does not cover ${width}x${height}`);
  }
  const options = m._heif_decoding_options_alloc();
  if (columns * rows === 1) return single(m, handle, options, err, ptrOut, strideOut, check);
  // struct heif_decoding_options { uint8_t version; uint8_t ignore_transformations; ... }
  m.HEAPU8[options + 1] = 1;
  const band = new Uint8Array(width * tileHeight * 4);
  let ty = 0;
  return {
    width,
    height,
    read() {
      if (ty >= rows) return null;
      const bandRows = Math.min(tileHeight, height - ty * tileHeight);
      for (let tx = 0; tx < columns; tx++) {
        m._heif_image_handle_decode_image_tile(err, handle, ptrOut, COLORSPACE_RGB, CHROMA_INTERLEAVED_RGBA, options, tx, ty);
        check(`decoding tile ${tx},${ty}`);
        const image = m.HEAP32[ptrOut >> 2];
        try {
          const w = m._heif_image_get_width(image, CHANNEL_INTERLEAVED);
          const h = m._heif_image_get_height(image, CHANNEL_INTERLEAVED);
          if (w !== tileWidth || h !== tileHeight) throw new Error(`HEIF tile ${tx},${ty} is ${w}x${h}, not the grid's ${tileWidth}x${tileHeight}`);
          const plane = m._heif_image_get_plane_readonly(image, CHANNEL_INTERLEAVED, strideOut);
          const stride = m.HEAP32[strideOut >> 2];
          // Edge tiles overhang the canvas (ISO/IEC 23008-12 6.6.2.3.1): keep what is inside.
          const x0 = tx * tileWidth;
          const cols = Math.min(tileWidth, width - x0);
          for (let y = 0; y < bandRows; y++) {
            band.set(m.HEAPU8.subarray(plane + y * stride, plane + y * stride + cols * 4), (y * width + x0) * 4);
          }
        } finally {
          m._heif_image_release(image);
        }
      }
      ty++;
      return { data: band.subarray(0, bandRows * width * 4), rows: bandRows };
    },
    get memoryBytes() {
      return m.HEAP8.buffer.byteLength;
    },
    jsBytes: band.byteLength,
  };
}

/** A single coded image: decoded whole, with libheif's transforms, handed over as one band. */
function single(m: LibHeif, handle: number, options: number, err: number, ptrOut: number, strideOut: number, check: (what: string) => void): RowDecoder {
  m._heif_decode_image(err, handle, ptrOut, COLORSPACE_RGB, CHROMA_INTERLEAVED_RGBA, options);
  check("decoding the image");
  const image = m.HEAP32[ptrOut >> 2];
  const width = m._heif_image_get_width(image, CHANNEL_INTERLEAVED);
  const height = m._heif_image_get_height(image, CHANNEL_INTERLEAVED);
  const plane = m._heif_image_get_plane_readonly(image, CHANNEL_INTERLEAVED, strideOut);
  const stride = m.HEAP32[strideOut >> 2];
  let done = false;
  return {
    width,
    height,
    oriented: true,
    read() {
      if (done) return null;
      done = true;
      if (stride === width * 4) return { data: m.HEAPU8.subarray(plane, plane + height * stride), rows: height };
      const band = new Uint8Array(width * height * 4);
      for (let y = 0; y < height; y++) band.set(m.HEAPU8.subarray(plane + y * stride, plane + y * stride + width * 4), y * width * 4);
      return { data: band, rows: height };
    },
    get memoryBytes() {
      return m.HEAP8.buffer.byteLength;
    },
    jsBytes: stride === width * 4 ? 0 : width * height * 4,
  };
}
