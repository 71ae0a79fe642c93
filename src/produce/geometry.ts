/**
 * @module produce/geometry
 * Where a requested `_W_H` size lands on a given source: which centred region to keep and what
 * size to resample it to. Pure arithmetic, so it is tested without images.
 */
import type { Size } from "../variants/key";

export interface Plan {
  /** Region of the source to keep (centre crop for "cover"). */
  crop: { x: number; y: number; width: number; height: number };
  /** Output size (of the image itself; with `pad`, placed on a larger canvas). */
  width: number;
  height: number;
  /**
   * `gravity=auto`: the whole image is resized to cover the box, and this window of it is cut
   * where the content is (produce/smart-crop), after the resize.
   */
  window?: { width: number; height: number };
  /** `fit: pad`: the canvas (filled with the background) and where the image sits on it. */
  pad?: { width: number; height: number; x: number; y: number };
}

/**
 * Both sides > 0: cover W x H and crop the overflow, centred on `size.focus` (default the
 * centre) and kept inside the image; `fit: contain` or `pad` instead fits the whole image inside
 * W x H (pad's canvas is `Plan.pad`). One side 0: fit that side and keep the aspect ratio. Never
 * upscales: when the source is smaller than asked, the output keeps the asked aspect ratio at
 * the largest size the source can give (imgproxy's `enlarge: false`; Cloudflare Images' `crop`
 * and `scale-down`).
 */
export function planResize(sourceWidth: number, sourceHeight: number, size: Size | null): Plan {
  const full = { x: 0, y: 0, width: sourceWidth, height: sourceHeight };
  if (!size || (!size.width && !size.height)) return { crop: full, width: sourceWidth, height: sourceHeight };
  if (size.width > 0 && size.height > 0 && size.fit) {
    // The whole image inside the box: the side that binds decides, never above the source.
    const scale = Math.min(1, size.width / sourceWidth, size.height / sourceHeight);
    const width = Math.max(1, Math.round(sourceWidth * scale));
    const height = Math.max(1, Math.round(sourceHeight * scale));
    if (size.fit === "contain") return { crop: full, width, height };
    // The canvas is the asked box; for a source smaller than it, the box's aspect ratio at the
    // largest size around the source (never upscaled, as above).
    const k = Math.min(1, Math.max(sourceWidth / size.width, sourceHeight / size.height));
    const cw = Math.max(width, Math.round(size.width * k));
    const ch = Math.max(height, Math.round(size.height * k));
    return { crop: full, width, height, pad: { width: cw, height: ch, x: Math.floor((cw - width) / 2), y: Math.floor((ch - height) / 2) } };
  }
  if (size.width > 0 && size.height > 0) {
    const target = size.width / size.height;
    let cw = sourceWidth;
    let ch = sourceHeight;
    if (sourceWidth / sourceHeight > target) cw = Math.max(1, Math.min(sourceWidth, Math.round(sourceHeight * target)));
    else ch = Math.max(1, Math.min(sourceHeight, Math.round(sourceWidth / target)));
    if (size.smart) {
      // The crop's size is known, its place is not until the pixels are: resize all of it.
      const scale = size.width >= cw || size.height >= ch ? 1 : size.width / cw;
      const window = scale === 1 ? { width: cw, height: ch } : { width: size.width, height: size.height };
      const width = Math.max(window.width, Math.round(sourceWidth * scale));
      const height = Math.max(window.height, Math.round(sourceHeight * scale));
      return { crop: full, width, height, window };
    }
    const fx = size.focus?.x ?? 0.5;
    const fy = size.focus?.y ?? 0.5;
    // The window centred on the focus, moved back inside the image where it would leave it.
    const x = Math.min(sourceWidth - cw, Math.max(0, Math.round(fx * sourceWidth - cw / 2)));
    const y = Math.min(sourceHeight - ch, Math.max(0, Math.round(fy * sourceHeight - ch / 2)));
    const crop = { x: size.focus ? x : Math.floor((sourceWidth - cw) / 2), y: size.focus ? y : Math.floor((sourceHeight - ch) / 2), width: cw, height: ch };
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
  if (plan.pad && (plan.pad.width !== plan.width || plan.pad.height !== plan.height)) return false;
  if (plan.window && (plan.window.width !== plan.width || plan.window.height !== plan.height)) return false;
  return plan.width === sourceWidth && plan.height === sourceHeight && plan.crop.width === sourceWidth && plan.crop.height === sourceHeight;
}
