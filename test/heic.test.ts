/**
 * HEIC originals decoded with libheif-js inside workerd: served as AVIF, WebP or JPEG on demand
 * (veImageX's view-time conversion), including the iPhone's 48-tile grid.
 */
import { env } from "cloudflare:test";
import libheif from "libheif-js/libheif-wasm/libheif.js";
import { describe, expect, it } from "vitest";
import { decode, type Pixels } from "../src/produce/codec-session";
import { resample } from "../src/produce/resample";
import { wasmModules } from "../wasm/modules";
import { call, encodeTo, fixture, gradient, put, uniquePrefix, until } from "./helpers";

/** libheif's own decode with its transforms applied (libheif-js's display()): the reference. */
async function libheifDisplayed(bytes: ArrayBuffer): Promise<Pixels> {
  type Image = { get_width(): number; get_height(): number; display(t: object, done: (r: unknown) => void): void };
  const mod = await new Promise<{ HeifDecoder: new () => { decode(b: Uint8Array): Image[] } }>((resolve) => {
    const m = (libheif as unknown as (o: object) => never)({
      instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) {
        const i = new WebAssembly.Instance(wasmModules.heif, imports);
        done(i);
        return i.exports;
      },
      onRuntimeInitialized: () => setTimeout(() => resolve(m)),
      print: () => {},
      printErr: () => {},
    });
  });
  const image = new mod.HeifDecoder().decode(new Uint8Array(bytes))[0];
  const data = new Uint8ClampedArray(image.get_width() * image.get_height() * 4);
  const target = { data, width: image.get_width(), height: image.get_height() };
  await new Promise((done) => image.display(target, done));
  return target;
}

function meanDiff(a: Pixels, b: Pixels): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) sum += Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]);
  return sum / ((a.data.length / 4) * 3);
}

describe("HEIC sources", () => {
  it.each([
    ["arrowHeic", "_300_0", 300, 400],
    ["rainbowHeic", "", 451, 461],
  ])("%s (tile path, transforms applied by the pipeline) looks as libheif displays it", async (name, size, width, height) => {
    const stem = `${uniquePrefix()}/t`;
    await put(`${stem}.heic`, fixture(name));
    const { res, body } = await call(`/${stem}${size}.heic?caplist=png`);
    expect(res.headers.get("X-Image-Tried")).toBe("png=transcode");
    const ours = await decode("png", body);
    expect([ours.width, ours.height]).toEqual([width, height]);
    const reference = await libheifDisplayed(fixture(name));
    // A wrong turn or crop differs by tens of levels; resampling alone by about one.
    expect(meanDiff(ours, resample(reference, width, height))).toBeLessThan(3);
  });

  it.each([
    ["avif", 200, 204],
    ["webp", 200, 204],
    ["jpg", 200, 204],
  ] as const)("a HEIC-only original is served as %s", async (format, width, height) => {
    const stem = `${uniquePrefix()}/photo`;
    await put(`${stem}.heic`, fixture("rainbowHeic"));
    const { res, image } = await call(`/${stem}_200_0.heic?caplist=${format}`, {}, { PEAK_MEMORY_HEADER: "on" });
    expect(res.headers.get("X-Image-Tried")).toBe(`${format}=transcode`);
    expect(image).toEqual({ format, width, height });
    expect(Number(res.headers.get("X-Image-Peak-Memory"))).toBeLessThanOrEqual(128 * 2 ** 20);
  });

  it("decodes the iPhone XS grid (48 tiles) and keeps the job under 128 MiB", async () => {
    const stem = `${uniquePrefix()}/pug`;
    await put(`${stem}.heic`, fixture("pug"));
    const { res, image } = await call(`/${stem}_1200_0.jpg?caplist=webp`, {}, { PEAK_MEMORY_HEADER: "on", CPU_BUDGET_MS: "10000" });
    expect(res.headers.get("X-Image-Tried")).toBe("webp=transcode");
    expect(image).toEqual({ format: "webp", width: 1200, height: 900 });
    expect(Number(res.headers.get("X-Image-Peak-Memory"))).toBeLessThanOrEqual(128 * 2 ** 20);
  });

  it("over the CPU budget with nothing else to serve, the best candidate is produced now; the rest are queued", async () => {
    const stem = `${uniquePrefix()}/pug`;
    await put(`${stem}.heic`, fixture("pug"));
    const first = await call(`/${stem}_1200_0.heic?caplist=webp,jpg`);
    expect(first.res.status).toBe(200);
    expect(first.res.headers.get("X-Image-Tried")).toBe("webp=transcode,jpg=over-cpu-budget");
    expect(first.image).toEqual({ format: "webp", width: 1200, height: 900 });
    // The JPEG was not produced in the request: the queue consumer stores it under the
    // request's own size name, so the next JPEG-only client finds it.
    await until("deferred JPEG", () => env.IMAGES.head(`${stem}_1200_0.jpg`), (o) => o !== null);
    const jpg = await call(`/${stem}_1200_0.heic?caplist=jpg`);
    expect(jpg.res.headers.get("X-Image-Tried")).toBe("jpg=r2");
    expect(jpg.image).toEqual({ format: "jpg", width: 1200, height: 900 });
  });

  it("over the CPU budget while another candidate is served now, it is deferred, then found in R2", async () => {
    const stem = `${uniquePrefix()}/pug`;
    await put(`${stem}.heic`, fixture("pug"));
    await put(`${stem}_600_0.jpg`, await encodeTo("jpg", gradient(600, 450)));
    const first = await call(`/${stem}_600_0.heic?caplist=webp,jpg`);
    expect(first.res.headers.get("X-Image-Tried")).toBe("webp=over-cpu-budget,jpg=r2");
    expect(first.image).toEqual({ format: "jpg", width: 600, height: 450 });
    await until("deferred WebP", () => env.IMAGES.head(`${stem}_600_0.webp`), (o) => o !== null);
    const second = await call(`/${stem}_600_0.heic?caplist=webp,jpg`);
    expect(second.res.headers.get("X-Image-Tried")).toBe("webp=r2");
    expect(second.image).toEqual({ format: "webp", width: 600, height: 450 });
  });

  it("a corrupt HEIC is a clean candidate failure, not a 500", async () => {
    const stem = `${uniquePrefix()}/bad`;
    await put(`${stem}.heic`, fixture("corruptedHeic"));
    const { res, body } = await call(`/${stem}_100_0.heic?caplist=webp,jpg`);
    expect(res.status).toBe(404);
    const verdicts = JSON.parse(new TextDecoder().decode(body)).candidates.map((c: { verdict: string }) => c.verdict);
    for (const v of verdicts) expect(["decode-error", "bad-source"]).toContain(v);
  });

  it("a truncated HEIC yields what libheif can recover, or a clean failure", async () => {
    const stem = `${uniquePrefix()}/cut`;
    await put(`${stem}.heic`, fixture("truncatedHeic"));
    const { res, image } = await call(`/${stem}_100_0.heic?caplist=webp,jpg`);
    expect([200, 404]).toContain(res.status);
    if (res.status === 200) expect(image?.format).toBe("webp");
  });
});
