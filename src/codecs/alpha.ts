/**
 * @module codecs/alpha
 * Whether an image's alpha channel matters: the pipeline flattens only transparent images for
 * formats without alpha (produce/orient), and the AVIF encoder codes an alpha image only for
 * them (codecs/avif), as libavif does.
 */

/** Whether any pixel is not fully opaque (a declared alpha channel is often all 255). */
export function hasTransparency(p: { data: Uint8Array | Uint8ClampedArray }): boolean {
  const d = p.data;
  for (let i = 3; i < d.length; i += 4) if (d[i] !== 255) return true;
  return false;
}
