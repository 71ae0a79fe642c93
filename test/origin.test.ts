/**
 * The pull-through origin (ORIGIN_URL) against a real HTTP server on loopback (test/global-setup
 * `originServer`), with real R2 and the real codecs: what the origin answers decides what the
 * client gets, and what R2 keeps.
 */
import { env } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { loadConfig } from "../src/config";
import { originUrl } from "../src/storage/origin";
import { bytesEqual, call, fixture, uniquePrefix, type Fetched } from "./helpers";

const server = () => inject("originUrl");
const ORIGIN_VARS = () => ({ ORIGIN_URL: `${server()}/files/`, ORIGIN_PRIVATE_HOSTS: "on" });
const json = (f: Fetched) => JSON.parse(new TextDecoder().decode(f.body));

/** Puts what the origin answers for `path` (under /files/). */
async function atOrigin(path: string, body: ArrayBuffer | string, o: { type?: string; status?: number; delayMs?: number; location?: string } = {}) {
  const headers: Record<string, string> = { "Content-Type": o.type ?? "application/octet-stream" };
  if (o.status) headers["X-Answer-Status"] = String(o.status);
  if (o.delayMs) headers["X-Answer-Delay-Ms"] = String(o.delayMs);
  if (o.location) headers["X-Answer-Location"] = o.location;
  const res = await fetch(`${server()}/files/${path}`, { method: "PUT", body, headers });
  expect(res.status).toBe(204);
}
const fetchesOf = async (path: string) => ((await (await fetch(`${server()}/count/${path}`)).json()) as { count: number }).count;

describe("pull-through origin", () => {
  it("pulls a missing original once: the first variant fetches it, the next variant and the original itself are served from R2", async () => {
    const p = uniquePrefix();
    const png = fixture("kodim23Png");
    await atOrigin(`${p}/parrot.png`, png, { type: "image/png" });
    // The URL names WebP: the origin is asked for parrot.webp, then ORIGIN_EXTENSIONS (jpg, png).
    const first = await call(`/${p}/parrot_300_0.webp`, {}, ORIGIN_VARS());
    expect(first.res.status).toBe(200);
    expect(first.image).toEqual({ format: "webp", width: 300, height: 200 });
    expect(await fetchesOf(`${p}/parrot.webp`)).toBe(1);
    expect(await fetchesOf(`${p}/parrot.png`)).toBe(1);
    // Stored in R2 as a pushed original is, with the origin's validators.
    const stored = await env.IMAGES.head(`${p}/parrot.png`);
    expect(stored?.customMetadata).toMatchObject({ producedBy: "origin", format: "png", width: "768", height: "512", originEtag: `"v-${png.byteLength}"`, originLastModified: "Mon, 07 Dec 2026 10:00:00 GMT" });

    const second = await call(`/${p}/parrot_200_0.jpg`, {}, ORIGIN_VARS());
    expect(second.image).toEqual({ format: "jpg", width: 200, height: 133 });
    const asIs = await call(`/${p}/parrot.png`, {}, ORIGIN_VARS());
    expect(asIs.res.status).toBe(200);
    expect(bytesEqual(asIs.body, png)).toBe(true);
    expect(await fetchesOf(`${p}/parrot.png`)).toBe(1);
  });

  it("coalesces concurrent misses of one image into one fetch", async () => {
    const p = uniquePrefix();
    await atOrigin(`${p}/c.png`, fixture("kodim23Png"), { type: "image/png", delayMs: 400 });
    const sizes = [100, 120, 140, 160];
    const got = await Promise.all(sizes.map((w) => call(`/${p}/c_${w}_0.png`, {}, ORIGIN_VARS())));
    expect(got.map((g) => g.image)).toEqual(sizes.map((w) => ({ format: "png", width: w, height: Math.round((w * 512) / 768) })));
    expect(await fetchesOf(`${p}/c.png`)).toBe(1);
  });

  it("origin 404 (every extension) is a 404; nothing is stored", async () => {
    const p = uniquePrefix();
    const got = await call(`/${p}/missing_300_0.jpg`, {}, ORIGIN_VARS());
    expect(got.res.status).toBe(404);
    expect(json(got)).toMatchObject({ error: "not_found" });
    expect(await fetchesOf(`${p}/missing.jpg`)).toBe(1);
    expect(await fetchesOf(`${p}/missing.png`)).toBe(1);
    expect((await env.IMAGES.list({ prefix: `${p}/` })).objects).toHaveLength(0);
  });

  it("origin 5xx is a 503 with Retry-After, never a 404; a later good answer is served", async () => {
    const p = uniquePrefix();
    await atOrigin(`${p}/down.jpg`, "busy", { status: 502, type: "text/plain" });
    const got = await call(`/${p}/down_300_0.jpg`, {}, ORIGIN_VARS());
    expect(got.res.status).toBe(503);
    expect(got.res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(json(got)).toMatchObject({ error: "temporarily_unavailable" });
    expect(await env.IMAGES.head(`${p}/down.jpg`)).toBeNull();
    await atOrigin(`${p}/down.jpg`, fixture("cameraJpeg"), { type: "image/jpeg" });
    const later = await call(`/${p}/down_300_0.jpg`, {}, ORIGIN_VARS());
    expect(later.image).toEqual({ format: "jpg", width: 300, height: 400 });
  });

  it("an origin slower than ORIGIN_TIMEOUT_MS is a 503, not a hang", async () => {
    const p = uniquePrefix();
    await atOrigin(`${p}/slow.jpg`, fixture("cameraJpeg"), { type: "image/jpeg", delayMs: 5000 });
    const got = await call(`/${p}/slow_300_0.jpg`, {}, { ...ORIGIN_VARS(), ORIGIN_TIMEOUT_MS: "300" });
    expect(got.res.status).toBe(503);
    expect(got.res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(await env.IMAGES.head(`${p}/slow.jpg`)).toBeNull();
  });

  it("an HTML page (or any non-image) under the image's name is a 422 naming it; nothing is stored", async () => {
    const p = uniquePrefix();
    await atOrigin(`${p}/page.jpg`, "<!doctype html><title>Login</title>", { type: "text/html" });
    const got = await call(`/${p}/page_300_0.jpg`, {}, ORIGIN_VARS());
    expect(got.res.status).toBe(422);
    expect(json(got)).toMatchObject({ error: "origin_not_image", candidates: expect.arrayContaining([expect.objectContaining({ verdict: "origin-rejected" })]) });
    expect(await env.IMAGES.head(`${p}/page.jpg`)).toBeNull();
  });

  it("an original over the upload limits is refused as a push would be (422), before it is stored", async () => {
    const p = uniquePrefix();
    await atOrigin(`${p}/big.jpg`, fixture("cameraJpeg"), { type: "image/jpeg" });
    const got = await call(`/${p}/big_300_0.jpg`, {}, { ...ORIGIN_VARS(), MAX_UPLOAD_PIXELS: "1000000" });
    expect(got.res.status).toBe(422);
    expect(await env.IMAGES.head(`${p}/big.jpg`)).toBeNull();
  });

  it("never leaves the origin's path: dot segments are refused, a redirect elsewhere is not followed", async () => {
    const p = uniquePrefix();
    // Decoded, the key holds '..' segments: a 400 before anything is fetched.
    const escape = await call(`/${p}/..%2f..%2fcount%2fx.jpg`, {}, ORIGIN_VARS());
    expect(escape.res.status).toBe(400);
    // Whatever a key holds, the URL built from it stays under the base.
    const base = `${server()}/files/`;
    for (const key of ["a/%2e%2e/%2e%2e/b.jpg", "a/..%2F..%2Fb.jpg", "a/?x=1.jpg", "a/#b.jpg", "a/b c.jpg"]) expect(originUrl(base, key).startsWith(base)).toBe(true);
    await atOrigin(`${p}/moved.jpg`, "", { status: 302, location: `${server()}/count/${p}/moved.jpg` });
    const moved = await call(`/${p}/moved_300_0.jpg`, {}, ORIGIN_VARS());
    expect(moved.res.status).toBe(422);
    // A redirect that stays under ORIGIN_URL is followed.
    await atOrigin(`${p}/real.png`, fixture("kodim23Png"), { type: "image/png" });
    await atOrigin(`${p}/alias.png`, "", { status: 301, location: `${server()}/files/${p}/real.png` });
    const alias = await call(`/${p}/alias_100_0.png`, {}, ORIGIN_VARS());
    expect(alias.image).toEqual({ format: "png", width: 100, height: 67 });
  });

  it("ORIGIN_URL on a loopback or private address is a config error unless ORIGIN_PRIVATE_HOSTS is on", () => {
    for (const url of ["http://127.0.0.1:8080/", "http://169.254.169.254/latest/", "http://localhost/img/", "http://10.0.0.7/"]) {
      expect(() => loadConfig({ ORIGIN_URL: url })).toThrow(/ORIGIN_URL: .* ORIGIN_PRIVATE_HOSTS/);
    }
    expect(loadConfig({ ORIGIN_URL: "https://images.example.com/media" }).origin).toEqual({ base: "https://images.example.com/media/", extensions: ["jpg", "png", "webp"], timeoutMs: 8000 });
    expect(() => loadConfig({ ORIGIN_URL: "ftp://images.example.com/" })).toThrow(/ORIGIN_URL/);
    expect(() => loadConfig({ ORIGIN_URL: "https://images.example.com/?token=x" })).toThrow(/ORIGIN_URL/);
    expect(() => loadConfig({ ORIGIN_URL: "https://images.example.com/", ORIGIN_EXTENSIONS: "jpg,bmp" })).toThrow(/ORIGIN_EXTENSIONS/);
    expect(loadConfig({}).origin).toBeNull();
  });
});
