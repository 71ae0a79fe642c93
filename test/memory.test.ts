/**
 * The codec layer's memory table (shrink-on-load and streaming), each row requested once with
 * the default budgets: served 200 on the first request, the right format and size (decoded),
 * no budget refusal in X-Image-Tried, and a whole-job peak (X-Image-Peak-Memory: WASM memories
 * and JS buffers together) under the row's limit. `npm run bench` measures the same jobs from
 * outside the worker (workerd's RSS).
 *
 * 24 MP progressive -> 1200w AVIF and WebP: the decoder's 69 MiB of coefficients beside a
 * whole-image encoder would take over 3/4 of the budget (AVIF's: over all of it), so the
 * pipeline picks the row encoders (an AVIF grid of 2x2 tiles of 600x400; WebP's YUV picture
 * filled by rows): 90.7 and 74.3 MiB, where the whole-image WebP job took 92.5.
 *
 * Not in the table: 24 MP progressive -> full-size WebP (those coefficients beside the 34 MiB YUV picture: 115 MiB measured, over the 112 MiB
 * budget; below, refused before it runs and the original served instead).
 */
import { describe, expect, it } from "vitest";
import { readHeader } from "../src/headers";
import { call, fixture, put, uniquePrefix } from "./helpers";

const MiB = 2 ** 20;

describe("memory follows the output, not the source", () => {
  it.each([
    ["12 MP iPhone HEIC -> 800w JPEG", "pug", "heic", "_800_0.jpg?caplist=jpg", "jpg", 800, 600, 48],
    ["12 MP iPhone HEIC -> 800w WebP", "pug", "heic", "_800_0.jpg?caplist=webp", "webp", 800, 600, 48],
    ["12 MP iPhone HEIC -> 800w AVIF", "pug", "heic", "_800_0.jpg?caplist=avif", "avif", 800, 600, 64],
    ["24 MP progressive JPEG -> 1200w WebP", "photo24mpProgressive", "jpg", "_1200_0.jpg?caplist=webp", "webp", 1200, 800, 96],
    ["24 MP progressive JPEG -> 1200w AVIF (grid)", "photo24mpProgressive", "jpg", "_1200_0.jpg?caplist=avif", "avif", 1200, 800, 96],
    ["48 MP baseline JPEG -> 1600w JPEG", "photo48mpBaseline", "jpg", "_1600_0.jpg?caplist=jpg", "jpg", 1600, 1200, 64],
    // JPEG above 4 MP is written by rows (libjpeg-turbo), not by mozjpeg's whole-image encoder.
    ["12 MP iPhone HEIC -> full-size JPEG", "pug", "heic", ".jpg?caplist=jpg", "jpg", 4032, 3024, 128],
    // Full-size AVIF as a grid of 512x512 tiles, WebP from a YUV picture filled by rows.
    ["12 MP iPhone HEIC -> full-size AVIF", "pug", "heic", ".jpg?caplist=avif", "avif", 4032, 3024, 128],
    ["24 MP baseline JPEG -> full-size WebP", "photo24mpBaseline", "jpg", ".jpg?caplist=webp", "webp", 6000, 4000, 128],
  ] as const)("%s: 200 at once, under its limit", async (_name, fixtureName, ext, path, format, width, height, limitMiB) => {
    const stem = `${uniquePrefix()}/photo`;
    await put(`${stem}.${ext}`, fixture(fixtureName));
    const { res, image, body } = await call(`/${stem}${path}`, {}, { PEAK_MEMORY_HEADER: "on" });
    expect(res.status).toBe(200);
    // The grid row: 1200x800 as 2x2 tiles of 600x400 (the header's band is one tile row).
    if (_name.endsWith("(grid)")) expect(readHeader(new Uint8Array(body))?.bandHeight).toBe(400);
    expect(res.headers.get("X-Image-Tried")).toBe(`${format}=transcode`);
    expect(image).toEqual({ format, width, height });
    const peak = Number(res.headers.get("X-Image-Peak-Memory"));
    expect(peak).toBeGreaterThan(0);
    expect(peak / MiB).toBeLessThanOrEqual(limitMiB);
  });

  it("24 MP progressive -> full-size WebP is refused before it runs, and the original JPEG is served", async () => {
    const stem = `${uniquePrefix()}/photo`;
    await put(`${stem}.jpg`, fixture("photo24mpProgressive"));
    const { res, image } = await call(`/${stem}.jpg?caplist=webp,jpg`);
    expect(res.headers.get("X-Image-Tried")).toBe("webp=over-memory-budget,jpg=r2");
    expect(image).toEqual({ format: "jpg", width: 6000, height: 4000 });
  });
});
