/**
 * @module codecs/heic
 * HEIC decoding with libheif-js (libheif + libde265 built with emscripten), one fresh instance
 * per job like the other emscripten codecs. libheif applies the file's transformations (clean
 * aperture, rotation, mirroring) itself and assembles grid images such as the iPhone's 48-tile
 * photos, so its output is already upright.
 */
// The CommonJS build: its `require("fs")`, `require("path")` and `require("crypto")` only run
// under Node (they are aliased to an empty module for the Workers bundle; see wrangler.toml).
import libheif from "libheif-js/libheif-wasm/libheif.js";
import type { Pixels } from ".";
import { wasmModules } from "../../wasm/modules";

interface HeifImage {
  get_width(): number;
  get_height(): number;
  is_primary(): boolean;
  display(target: { data: Uint8ClampedArray; width: number; height: number }, done: (result: unknown) => void): void;
  free(): void;
}
interface LibHeif {
  HEAP8: Int8Array;
  HeifDecoder: new () => { decode(bytes: Uint8Array): HeifImage[] };
}

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

/** Decodes the primary image; returns the pixels and the instance's WASM memory size. */
export async function decodeHeic(bytes: ArrayBuffer): Promise<{ pixels: Pixels; memoryBytes: number }> {
  const mod = await instantiate();
  const images = new mod.HeifDecoder().decode(new Uint8Array(bytes));
  const image = images.find((i) => i.is_primary()) ?? images[0];
  if (!image) throw new Error("no image in HEIF file");
  const width = image.get_width();
  const height = image.get_height();
  const data = new Uint8ClampedArray(width * height * 4);
  const shown = await new Promise<unknown>((resolve) => image.display({ data, width, height }, resolve));
  const memoryBytes = mod.HEAP8.buffer.byteLength;
  for (const i of images) i.free();
  if (!shown) throw new Error("libheif could not decode the image");
  return { pixels: { data, width, height }, memoryBytes };
}
