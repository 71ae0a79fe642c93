/**
 * Honest status codes (issue 13) against real R2 with injected faults: the chain degrades to the
 * next tier and the next candidate, answers 503 with Retry-After when nothing can be served now
 * but may be later, and never turns an R2 fault into a 404 or a 500.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, encodeTo, faultyBucket, fixture, gradient, put, uniquePrefix, until } from "./helpers";

const json = (body: ArrayBuffer) => JSON.parse(new TextDecoder().decode(body));

async function original(): Promise<string> {
  const stem = `${uniquePrefix()}/cover`;
  await put(`${stem}.jpg`, await encodeTo("jpg", gradient(320, 240)));
  return stem;
}

describe("R2 faults", () => {
  it("R2 reads failing: 503 with Retry-After, no-store and the verdicts; never 404 or 500", async () => {
    const stem = await original();
    const { res, body } = await call(`/${stem}_100_0.jpg?caplist=webp,jpg`, {}, { IMAGES: faultyBucket(env.IMAGES, { get: true, list: true }) });
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(res.headers.get("X-Image-Tried")).toBe("webp=store-error,jpg=store-error");
    expect(json(body)).toMatchObject({ error: "temporarily_unavailable", candidates: [{ format: "webp", verdict: "store-error" }, { format: "jpg", verdict: "store-error" }] });
    // The same request with R2 back: served.
    expect((await call(`/${stem}_100_0.jpg?caplist=webp,jpg`)).image).toEqual({ format: "webp", width: 100, height: 75 });
  });

  it("a failing list (the search for another original) is a 503, not 'no source'", async () => {
    const stem = `${uniquePrefix()}/only-png`;
    await put(`${stem}.png`, await encodeTo("png", gradient(64, 48)));
    const { res } = await call(`/${stem}.jpg?caplist=webp`, {}, { IMAGES: faultyBucket(env.IMAGES, { list: true }) });
    expect(res.status).toBe(503);
    expect((await call(`/${stem}.jpg?caplist=webp`)).image).toEqual({ format: "webp", width: 64, height: 48 });
  });

  it("a failing read of a pre-produced variant falls through to producing it from the original", async () => {
    const stem = await original();
    await put(`${stem}_100_0.webp`, await encodeTo("webp", gradient(100, 75)));
    const { res, image } = await call(`/${stem}_100_0.jpg?caplist=webp`, {}, { IMAGES: faultyBucket(env.IMAGES, { get: (k) => k.endsWith("_100_0.webp") }) });
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Image-Tried")).toBe("webp=transcode");
    expect(image).toEqual({ format: "webp", width: 100, height: 75 });
  });

  it("failing writes (write-back, purge index) do not fail the response; a cache hit needs no R2 at all", async () => {
    const stem = await original();
    const first = await call(`/${stem}_120_0.jpg?caplist=avif`, {}, { IMAGES: faultyBucket(env.IMAGES, { put: true }) });
    expect(first.res.status).toBe(200);
    expect(first.image).toEqual({ format: "avif", width: 120, height: 90 });
    expect(await env.IMAGES.head(`${stem}_120_0.avif`)).toBeNull();
    const hit = await call(`/${stem}_120_0.jpg?caplist=avif`, {}, { IMAGES: faultyBucket(env.IMAGES, { get: true, head: true, put: true, list: true }) });
    expect(hit.res.status).toBe(200);
    expect(hit.res.headers.get("X-Image-Source")).toBe("cache");
  });
});

describe("status codes and validators", () => {
  it("a HEIC whose only candidate must wait for the queue answers 503 + Retry-After, then 200", async () => {
    const stem = `${uniquePrefix()}/pug`;
    await put(`${stem}.heic`, fixture("pug"));
    // The platform's CPU limit (here 1 s) is too short to produce it in the request.
    const first = await call(`/${stem}_800_0.heic?caplist=avif`, {}, { CPU_LIMIT_MS: "1000" });
    expect(first.res.status).toBe(503);
    expect(first.res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(first.res.headers.get("X-Image-Tried")).toBe("avif=over-cpu-budget");
    await until("deferred AVIF", () => env.IMAGES.head(`${stem}_800_0.avif`), (o) => o !== null);
    const second = await call(`/${stem}_800_0.heic?caplist=avif`, {}, { CPU_LIMIT_MS: "1000" });
    expect(second.res.status).toBe(200);
    expect(second.image).toEqual({ format: "avif", width: 800, height: 600 });
  });

  it("a candidate deferred for CPU that then fails for good (a broken file) is a 404, and nothing is queued", async () => {
    const stem = `${uniquePrefix()}/broken`;
    const jpeg = new Uint8Array(await encodeTo("jpg", gradient(320, 240)));
    // The header is intact, the entropy-coded data is cut: decoding fails, the header does not.
    await put(`${stem}.jpg`, jpeg.slice(0, jpeg.length >> 1).buffer);
    const { res } = await call(`/${stem}_100_0.jpg?caplist=webp`, {}, { CPU_BUDGET_MS: "1" });
    expect(res.status).toBe(404);
    expect(res.headers.get("X-Image-Tried")).toBe("webp=decode-error");
    expect((await env.IMAGES.list({ prefix: `_cdn/jobs/${encodeURIComponent(`deferred:${stem}`)}` })).objects).toEqual([]);
  });

  it("Chrome's Accept on a .heic URL gets AVIF, never image/heic", async () => {
    const stem = `${uniquePrefix()}/rainbow`;
    await put(`${stem}.heic`, fixture("rainbowHeic"));
    const { res, image } = await call(`/${stem}.heic`, { headers: { Accept: "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8" } });
    expect(res.headers.get("Content-Type")).toBe("image/avif");
    expect(image).toEqual({ format: "avif", width: 451, height: 461 });
  });

  it("one ETag per variant: the transcode's, and the same from the R2 copy written back", async () => {
    const stem = await original();
    // EDGE_TTL=0 keeps it out of the edge cache, so the second answer comes from R2.
    const first = await call(`/${stem}_160_0.jpg?caplist=avif`, {}, { EDGE_TTL: "0" });
    expect(first.res.headers.get("X-Image-Source")).toBe("transcode");
    await until("write-back", () => env.IMAGES.head(`${stem}_160_0.avif`), (o) => o !== null);
    const second = await call(`/${stem}_160_0.jpg?caplist=avif`, {}, { EDGE_TTL: "0" });
    expect(second.res.headers.get("X-Image-Source")).toBe("r2");
    expect(second.res.headers.get("ETag")).toBe(first.res.headers.get("ETag"));
    const revalidated = await call(`/${stem}_160_0.jpg?caplist=avif`, { headers: { "If-None-Match": first.res.headers.get("ETag")! } }, { EDGE_TTL: "0" });
    expect(revalidated.res.status).toBe(304);
  });
});
