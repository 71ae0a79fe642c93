// The two quality metrics the defaults are calibrated on (issue 16), both against the exact
// pixels the encoder was given:
//   - SSIM (ssim.js, Wang et al. 2004, on luma): structure, contrast and luminance in 11x11
//     windows; blind to chroma.
//   - Butteraugli (Debian's `butteraugli`, Google's psychovisual distance): a model of the eye's
//     sensitivity per frequency band and colour channel; its score is the worst region's
//     distance (lower is better), so it weighs local, visible damage (ringing, banding, colour
//     bleeding) that an image-wide SSIM mean averages away.
//   - SSIMULACRA 2 (libjxl 0.11.2's tool in ../shared/tools/ssimulacra2, when present): the
//     perceptual metric the guide judges encoders by (90 visually lossless, 80 very high).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import sharp from "sharp";
import { ssimOf } from "./stats.mjs";

const BUTTERAUGLI = "/usr/bin/butteraugli";
const SSIMULACRA2 = resolve(new URL("../..", import.meta.url).pathname, "../shared/tools/ssimulacra2/ssimulacra2");

/** Whether SSIMULACRA 2's tool is beside the repo (../shared/tools/ssimulacra2, not in a bare clone). */
export const hasSsimulacra2 = () => existsSync(SSIMULACRA2);

/** Whether the butteraugli CLI is installed (`apt-get install butteraugli`). */
export function hasButteraugli() {
  try {
    execFileSync(BUTTERAUGLI, [], { stdio: "ignore" });
  } catch (e) {
    // It exits non-zero without arguments; ENOENT means absent.
    return e.code !== "ENOENT";
  }
  return true;
}

/** RGBA pixels of any image sharp can read. */
export async function rgba(bytes) {
  const { data, info } = await sharp(bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/**
 * A reference image for repeated comparisons: its pixels, and a PNG of them on disk for
 * butteraugli (which reads files).
 */
export async function reference(pixels) {
  const dir = mkdtempSync(join(tmpdir(), "metric-"));
  const path = join(dir, "ref.png");
  await sharp(Buffer.from(pixels.data.buffer, pixels.data.byteOffset, pixels.data.length), { raw: { width: pixels.width, height: pixels.height, channels: 4 } })
    .removeAlpha()
    .png({ compressionLevel: 1 })
    .toFile(path);
  return {
    pixels,
    /** SSIM and butteraugli of an encoded candidate (any format sharp decodes). */
    async score(encoded, { butteraugli = true } = {}) {
      const decoded = await rgba(Buffer.from(encoded));
      const ssim = ssimOf(pixels, decoded);
      if (!butteraugli) return { ssim };
      const cand = join(dir, "cand.png");
      await sharp(Buffer.from(decoded.data.buffer, decoded.data.byteOffset, decoded.data.length), { raw: { width: decoded.width, height: decoded.height, channels: 4 } })
        .removeAlpha()
        .png({ compressionLevel: 1 })
        .toFile(cand);
      const out = execFileSync(BUTTERAUGLI, [path, cand], { encoding: "utf8" });
      return { ssim, butteraugli: Number(out.trim()) };
    },
    /** SSIMULACRA 2 of an encoded candidate (any format sharp decodes): higher is better. */
    async ssimulacra2(encoded) {
      const decoded = await rgba(Buffer.from(encoded));
      const cand = join(dir, "cand2.png");
      await sharp(Buffer.from(decoded.data.buffer, decoded.data.byteOffset, decoded.data.length), { raw: { width: decoded.width, height: decoded.height, channels: 4 } })
        .removeAlpha()
        .png({ compressionLevel: 1 })
        .toFile(cand);
      return Number(execFileSync(SSIMULACRA2, [path, cand], { encoding: "utf8" }).trim());
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
