// A custom loader for next/image (next.config.js: `images: { loader: "custom", loaderFile:
// "./image-loader.js" }`). next/image asks it for one URL per width of its srcset; the worker
// negotiates the format from the browser's Accept, so the loader names only width and quality.
// IMAGE_CDN is this worker's hostname (e.g. https://img.example.com); src is the image's key
// with its leading slash (/covers/a1.jpg). Tested: test/recipes.test.ts.
export const IMAGE_CDN = "https://img.example.com";

/** @param {{ src: string, width: number, quality?: number }} props */
export default function imageLoader({ src, width, quality }) {
  const url = new URL(src, IMAGE_CDN);
  url.searchParams.set("width", String(width));
  // next/image's default is 75, the worker's `low` level; unset, the worker's QUALITY_LEVEL applies.
  if (quality) url.searchParams.set("quality", String(quality));
  return url.toString();
}
