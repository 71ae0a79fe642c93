/**
 * @module produce/geometry
 * Where a requested `_W_H` size lands on a given source: which centred region to keep and what
 * size to resample it to. Pure arithmetic, so it is tested without images.
 */
import type { Size } from "../variants/key";

export interface Plan {
  /** Region of the source to keep (centre crop for "cover"). */
  crop: { x: number; y: number; width: number; height: number };
  /** Output size. */
  width: number;
  height: number;
}

/**
 * Both sides > 0: cover W x H and crop the overflow, centred. One side 0: fit that side and keep
 * the aspect ratio. Never upscales: when the source is smaller than asked, the output keeps the
 * asked aspect ratio at the largest size the source can give (imgproxy's `enlarge: false`).
 */
export function planResize(sourceWidth: number, sourceHeight: number, size: Size | null): Plan {
  const full = { x: 0, y: 0, width: sourceWidth, height: sourceHeight };
  if (!size) return { crop: full, width: sourceWidth, height: sourceHeight };
  if (size.width > 0 && size.height > 0) {
    const target = size.width / size.height;
    let cw = sourceWidth;
    let ch = sourceHeight;
    if (sourceWidth / sourceHeight > target) cw = Math.max(1, Math.min(sourceWidth, Math.round(sourceHeight * target)));
    else ch = Math.max(1, Math.min(sourceHeight, Math.round(sourceWidth / target)));
    const crop = { x: Math.floor((sourceWidth - cw) / 2), y: Math.floor((sourceHeight - ch) / 2), width: cw, height: ch };
    if (size.width >= cw || size.height >= ch) return { crop, width: cw, height: ch };
    return { crop, width: size.width, height: size.height };
  }
  if (size.width > 0) {
    const width = Math.min(size.width, sourceWidth);
    return { crop: full, width, height: Math.max(1, Math.round((sourceHeight * width) / sourceWidth)) };
  }
  const height = Math.min(size.height, sourceHeight);
  return { crop: full, width: Math.max(1, Math.round((sourceWidth * height) / sourceHeight)), height };
}

export function isIdentity(plan: Plan, sourceWidth: number, sourceHeight: number): boolean {
  return plan.width === sourceWidth && plan.height === sourceHeight && plan.crop.width === sourceWidth && plan.crop.height === sourceHeight;
}
