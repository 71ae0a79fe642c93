/**
 * @module codecs/ssim2
 * SSIMULACRA 2, libjxl 0.11.2's perceptual metric (native/ssim2/: its tools/ssimulacra2.cc built
 * to WASM SIMD), the score the guide judges encoders by: 90 is visually lossless, 80 very high,
 * 70 high. It gives the same scores as libjxl's command-line tool on the same sRGB pixels.
 * It holds about a dozen float images of the input's size (155 bytes a pixel), so it is meant
 * for small samples of an image (produce/perceptual), never a whole photo.
 */
import { wasmModules } from "../../wasm/modules";
import type { CodecUsage, Pixels } from "./index";
import { CodecError, instantiateStandalone, type StandaloneExports } from "./standalone";

interface Ssim2Exports extends StandaloneExports {
  ssim2_score(reference: number, distorted: number, width: number, height: number): number;
}

/** SSIMULACRA 2 of `distorted` against `reference` (same size, both 8-bit sRGB RGBA; alpha ignored). */
export function ssimulacra2(reference: Pixels, distorted: Pixels, usage: CodecUsage): number {
  const { width, height } = reference;
  if (distorted.width !== width || distorted.height !== height) {
    throw new CodecError(`ssimulacra2: ${distorted.width}x${distorted.height} against ${width}x${height}`);
  }
  const e = instantiateStandalone<Ssim2Exports>(wasmModules.ssim2);
  const bytes = width * height * 4;
  const a = e.malloc(bytes);
  const b = e.malloc(bytes);
  if (!a || !b) throw new CodecError("ssimulacra2: out of memory");
  new Uint8Array(e.memory.buffer, a, bytes).set(reference.data.subarray(0, bytes));
  new Uint8Array(e.memory.buffer, b, bytes).set(distorted.data.subarray(0, bytes));
  const score = e.ssim2_score(a, b, width, height);
  usage.note(e.memory.buffer.byteLength);
  usage.retire(e.memory.buffer.byteLength);
  return score;
}
