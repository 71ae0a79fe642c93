/**
 * The URLs the recipes of docs/recipes.md build, asked of the worker and decoded: the Next.js
 * loader itself (docs/recipes/next-image-loader.js), and what the srcset, Client Hints, OkHttp,
 * Coil and Glide recipes put in a URL, as the recipes spell it.
 */
import { describe, expect, it } from "vitest";
import imageLoader, { IMAGE_CDN } from "../docs/recipes/next-image-loader.js";
import { BROWSERS, call, fixture, put, uniquePrefix } from "./helpers";

/** The path and query of a recipe's absolute URL (the tests' worker is not img.example.com). */
const local = (url: string) => {
  const u = new URL(url);
  expect(u.origin).toBe(IMAGE_CDN);
  return `${u.pathname}${u.search}`;
};

async function photo(): Promise<string> {
  const stem = `${uniquePrefix()}/a1`;
  await put(`${stem}.jpg`, fixture("cameraJpeg"));
  return stem;
}

describe("recipes", () => {
  it("the Next.js loader: each srcset width, in the browser's best format", async () => {
    const stem = await photo();
    for (const width of [640, 1080]) {
      const url = imageLoader({ src: `/${stem}.jpg`, width, quality: 75 });
      expect(url).toBe(`${IMAGE_CDN}/${stem}.jpg?width=${width}&quality=75`);
      const got = await call(local(url), { headers: { Accept: BROWSERS.chrome } });
      expect(got.image, url).toEqual({ format: "avif", width, height: Math.round((width * 2592) / 1944) });
    }
    expect(imageLoader({ src: `/${stem}.jpg`, width: 256 })).toBe(`${IMAGE_CDN}/${stem}.jpg?width=256`);
  });

  it("srcset widths, width=auto with Sec-CH-Width, and a fixed size under Sec-CH-DPR", async () => {
    const stem = await photo();
    const srcset = await call(`/${stem}.jpg?width=320`, { headers: { Accept: BROWSERS.safari15 } });
    expect(srcset.image).toEqual({ format: "webp", width: 320, height: 427 });
    const auto = await call(`/${stem}.jpg?width=auto`, { headers: { Accept: BROWSERS.chrome, "Sec-CH-Width": "750" } });
    expect(auto.image).toEqual({ format: "avif", width: 750, height: 1000 });
    const hinted = await call(`/${stem}_320_0.jpg`, { headers: { Accept: BROWSERS.firefox, "Sec-CH-DPR": "2" } });
    expect(hinted.image).toEqual({ format: "avif", width: 640, height: 853 });
  });

  it("OkHttp's caplist with Coil's width and height, and Glide's _W_H path", async () => {
    const stem = await photo();
    // The interceptor's caplist on an Android 12+ device, after Coil's mapper (a 360x360 view).
    const coil = await call(`/${stem}.jpg?width=360&height=360&caplist=avif,webp,jpg`);
    expect(coil.image).toEqual({ format: "avif", width: 360, height: 360 });
    const older = await call(`/${stem}.jpg?width=360&caplist=webp,jpg`);
    expect(older.image).toEqual({ format: "webp", width: 360, height: 480 });
    // Glide's loader for a 405x540 ImageView, the interceptor's caplist added, no Accept.
    const glide = await call(`/${stem}_405_540.jpg?caplist=webp,jpg`);
    expect(glide.image).toEqual({ format: "webp", width: 405, height: 540 });
    // A placeholder while it loads.
    expect((await call(`/${stem}.jpg?placeholder=blur&caplist=webp,jpg`)).body.byteLength).toBeLessThan(1024);
  });
});
