/**
 * @module wasm/modules
 * The one place that names codec binaries. Each is imported as a precompiled module because
 * Workers refuse `WebAssembly.compile` on bytes at run time; the codec packages take these
 * through their `init(module)` functions.
 */
import avifDec from "@jsquash/avif/codec/dec/avif_dec.wasm";
// @ts-expect-error the package ships a .wasm.d.ts for instance exports; wrangler gives a Module
import png from "@jsquash/png/codec/pkg/squoosh_png_bg.wasm";
import heif from "libheif-js/libheif-wasm/libheif.wasm";
// Our own libjpeg-turbo build (native/jpeg/, `npm run build:native`): scaled, row-streaming.
import jpeg from "../native/jpeg/jpeg.wasm";
// Our own libwebp build (native/webp/): decoded straight to a scaled size.
import webp from "../native/webp/webp.wasm";
// Our own giflib build (native/gif/): frame by frame.
import gif from "../native/gif/gif.wasm";
// Our own libwebp animation build (native/webpanim/): WebPAnimEncoder and WebPAnimDecoder, SIMD.
import webpAnim from "../native/webpanim/webpanim.wasm";
// Our own libaom build (native/av1seq/), SIMD: AVIF stills and grid tiles (all-intra), and AV1
// image sequences frame by frame (animated AVIF).
import av1seq from "../native/av1seq/av1seq.wasm";
// Our own libaom decoder build (native/av1dec/), SIMD: animated AVIF sources, frame by frame.
import av1dec from "../native/av1dec/av1dec.wasm";
// Our own resampler kernels (native/resize/), SIMD.
import resize from "../native/resize/resize.wasm";
// SSIMULACRA 2 (libjxl 0.11.2's tools/ssimulacra2, native/ssim2/), SIMD: per-image quality.
import ssim2 from "../native/ssim2/ssim2.wasm";

export const wasmModules = { av1dec, av1seq, avifDec, gif, heif, jpeg, png, resize, ssim2, webp, webpAnim } as const;
