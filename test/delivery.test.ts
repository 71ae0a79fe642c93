/**
 * The delivery path end to end, inside workerd, against miniflare's real R2 and Cache and the
 * real WASM codecs. Every 200 is decoded and checked for format and size.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { loadConfig } from "../src/config";
import { jobService } from "../src/jobs/service";
import { edgeCache } from "../src/storage/cache";
import { r2Store } from "../src/storage/r2";
import { BROWSERS, bytesEqual, call, encodeTo, fixture, gradient, ORIGIN, put, uniquePrefix } from "./helpers";

/** A 640x480 JPEG original under a fresh stem. */
async function jpegOriginal(): Promise<{ stem: string; bytes: ArrayBuffer }> {
  const stem = `${uniquePrefix()}/cover`;
  const bytes = await encodeTo("jpg", gradient(640, 480));
  await put(`${stem}.jpg`, bytes);
  return { stem, bytes };
}

describe("negotiation through the worker", () => {
  let stem: string;
  let original: ArrayBuffer;
  beforeAll(async () => {
    ({ stem, bytes: original } = await jpegOriginal());
  });

  it.each([
    ["chrome", BROWSERS.chrome, "avif"],
    ["firefox", BROWSERS.firefox, "avif"],
    ["safari 17", BROWSERS.safari17, "avif"],
    ["safari 15", BROWSERS.safari15, "webp"],
    ["avif refused", BROWSERS.noAvif, "webp"],
  ] as const)("%s gets %s at the original size, with Vary: Accept", async (_n, accept, format) => {
    const { res, image } = await call(`/${stem}.jpg`, { headers: { Accept: accept } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe(`image/${format}`);
    expect(res.headers.get("Vary")).toBe("Accept");
    expect(image).toEqual({ format, width: 640, height: 480 });
  });

  it("curl (*/*) and a client with no Accept get the stored JPEG byte for byte", async () => {
    for (const headers of [{ Accept: BROWSERS.curl }, {}] as Record<string, string>[]) {
      const { res, body, image } = await call(`/${stem}.jpg`, { headers });
      expect(res.status).toBe(200);
      expect(res.headers.get("X-Image-Source")).toMatch(/^(r2|cache)$/);
      expect(res.headers.get("Vary")).toBe("Accept");
      expect(image).toEqual({ format: "jpg", width: 640, height: 480 });
      expect(bytesEqual(body, original)).toBe(true);
    }
  });

  it("an app with no Accept, or curl's */*, gets the format its URL's suffix names (issue 32)", async () => {
    for (const format of ["avif", "webp"] as const) {
      for (const headers of [{}, { Accept: BROWSERS.curl }] as Record<string, string>[]) {
        const { res, image } = await call(`/${stem}_320_240.${format}`, { headers });
        expect(res.status).toBe(200);
        expect(res.headers.get("Content-Type")).toBe(`image/${format}`);
        expect(image).toEqual({ format, width: 320, height: 240 });
      }
    }
    // A browser's image/* alone still gets what every client decodes.
    const { image } = await call(`/${stem}_320_240.webp`, { headers: { Accept: "image/*" } });
    expect(image).toEqual({ format: "jpg", width: 320, height: 240 });
  });

  it("a caplist decides alone: no Vary, Accept ignored, aliases and case accepted", async () => {
    const { res, image } = await call(`/${stem}.jpg?caplist=WEBP,jpeg`, { headers: { Accept: BROWSERS.chrome } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Vary")).toBeNull();
    expect(image).toEqual({ format: "webp", width: 640, height: 480 });
  });

  it("an option it does not take is a 400 naming the ones there are, not the original's megabytes (issue 32)", async () => {
    for (const query of ["size=300", "resize=300&format=webp", "blur=50", "caplist=webp&crop=1"]) {
      const { res, body } = await call(`/${stem}.jpg?${query}`, { headers: { Origin: "https://app.example.net" } });
      expect(res.status, query).toBe(400);
      // A page's script can read why.
      expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
      expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
      const json = JSON.parse(new TextDecoder().decode(body));
      expect(json.error).toBe("unknown_option");
      expect(json.message).toContain('"caplist"');
      expect(json.message).toContain('"width/w"');
    }
    // v is a cache-busting parameter: accepted and ignored.
    const { res, image } = await call(`/${stem}_320_240.jpg?caplist=webp&v=3`);
    expect(res.status).toBe(200);
    expect(image).toEqual({ format: "webp", width: 320, height: 240 });
  });

  it("images are served to any page (CORS), a preflight is answered, the push API is not opened to browsers (issue 32)", async () => {
    const { res, image } = await call(`/${stem}_320_240.jpg?caplist=webp`, { headers: { Origin: "https://app.example.net" } });
    expect(res.status).toBe(200);
    expect(image).toEqual({ format: "webp", width: 320, height: 240 });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(res.headers.get("Access-Control-Expose-Headers")).toContain("X-Image-Source");
    const pre = await call(`/${stem}_320_240.jpg`, { method: "OPTIONS", headers: { Origin: "https://app.example.net", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "accept" } });
    expect(pre.res.status).toBe(204);
    expect(pre.res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(pre.res.headers.get("Access-Control-Allow-Methods")).toBe("GET,HEAD");
    const api = await call(`/_api/objects/${stem}.jpg`, { headers: { Origin: "https://app.example.net" } });
    expect(api.res.headers.get("Access-Control-Allow-Origin")).toBeNull();
    // Pages may read Server-Timing (Resource Timing).
    expect(res.headers.get("Timing-Allow-Origin")).toBe("*");
    // CORS_ORIGIN narrows it to listed pages.
    const vars = { CORS_ORIGIN: "https://www.example.com,https://app.example.net" };
    const listed = await call(`/${stem}_320_240.jpg?caplist=webp`, { headers: { Origin: "https://app.example.net" } }, vars);
    expect(listed.res.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example.net");
    const other = await call(`/${stem}_320_240.jpg?caplist=webp`, { headers: { Origin: "https://evil.example.org" } }, vars);
    expect(other.image).toEqual({ format: "webp", width: 320, height: 240 });
    expect(other.res.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("a caplist with no known format is a 400 with a JSON body and no long caching", async () => {
    const { res, body } = await call(`/${stem}.jpg?caplist=jxl,bmp`);
    expect(res.status).toBe(400);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(JSON.parse(new TextDecoder().decode(body))).toMatchObject({ error: "bad_caplist" });
  });

  it("an Accept that refuses the only possible format is a 406 that still varies on Accept", async () => {
    const { res, body } = await call(`/${stem}.jpg`, { headers: { Accept: "image/jpeg;q=0" } });
    expect(res.status).toBe(406);
    expect(res.headers.get("Vary")).toBe("Accept");
    expect(JSON.parse(new TextDecoder().decode(body))).toMatchObject({ error: "not_acceptable" });
  });
});

describe("lookup chain", () => {
  it("transcodes on demand, then serves the second request from the edge cache", async () => {
    const { stem } = await jpegOriginal();
    const first = await call(`/${stem}_320_240.jpg?caplist=webp`);
    expect(first.res.headers.get("X-Image-Source")).toBe("transcode");
    expect(first.res.headers.get("X-Image-Tried")).toBe("webp=transcode");
    expect(first.image).toEqual({ format: "webp", width: 320, height: 240 });
    // A JPEG streams its rows into the resampler, so `decode` covers the resize too.
    expect(first.res.headers.get("Server-Timing")).toMatch(/cache;dur=[\d.]+.*r2;dur=.*decode;dur=.*encode;dur=/);

    const second = await call(`/${stem}_320_240.jpg?caplist=webp`);
    expect(second.res.headers.get("X-Image-Source")).toBe("cache");
    expect(second.res.headers.get("X-Image-Tried")).toBe("webp=hit");
    // A hit touches R2 not at all: Server-Timing counts every R2 call of the chain.
    expect(second.res.headers.get("Server-Timing")).toMatch(/^cache;dur=[\d.]+;desc="1 op"$/);
    expect(second.res.headers.get("ETag")).toBe(first.res.headers.get("ETag"));
    expect(bytesEqual(second.body, first.body)).toBe(true);
  });

  it("shares cache entries between caplists in any order (the key holds the chosen format only)", async () => {
    const { stem } = await jpegOriginal();
    const a = await call(`/${stem}_100_0.jpg?caplist=jpg,webp`);
    const b = await call(`/${stem}_100_0.jpg?caplist=webp,jpg`);
    expect(a.res.headers.get("X-Image-Source")).toBe("transcode");
    expect(b.res.headers.get("X-Image-Source")).toBe("cache");
    expect(b.image).toEqual({ format: "webp", width: 100, height: 75 });
    // An Accept-negotiated request that lands on the same format shares the entry too.
    const c = await call(`/${stem}_100_0.jpg`, { headers: { Accept: BROWSERS.safari15 } });
    expect(c.res.headers.get("X-Image-Source")).toBe("cache");
  });

  it("a cache hit performs no R2 operation", async () => {
    const { stem } = await jpegOriginal();
    let r2Calls = 0;
    // Every R2 operation of the worker goes through the binding: counted at the binding.
    const counting = new Proxy(env.IMAGES, {
      get(target, prop) {
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? (...a: unknown[]) => (r2Calls++, v.apply(target, a)) : v;
      },
    });
    const config = loadConfig(env);
    const cache = edgeCache(caches.default, config.edgeTtl);
    const store = r2Store(counting);
    const jobs = jobService({ config, store, cache, queue: env.JOBS, log: () => {} });
    const app = createApp({ config, store, cache, jobs });
    const fetchOnce = async () => {
      const ctx = createExecutionContext();
      const res = await app.fetch(new Request(`${ORIGIN}/${stem}_64_64.jpg?caplist=jpg`), env, ctx);
      await res.arrayBuffer();
      await waitOnExecutionContext(ctx);
      return res;
    };
    expect((await fetchOnce()).headers.get("X-Image-Source")).toBe("transcode");
    expect(r2Calls).toBeGreaterThan(0);
    r2Calls = 0;
    expect((await fetchOnce()).headers.get("X-Image-Source")).toBe("cache");
    expect(r2Calls).toBe(0);
  });

  it("serves an origin's pre-produced variant byte for byte, before transcoding", async () => {
    const { stem } = await jpegOriginal();
    const preProduced = await encodeTo("webp", gradient(200, 100, 255), 40);
    await put(`${stem}_200_100.webp`, preProduced);
    const { res, body, image } = await call(`/${stem}_200_100.jpg?caplist=webp,jpg`);
    expect(res.headers.get("X-Image-Source")).toBe("r2");
    expect(res.headers.get("X-Image-Tried")).toBe("webp=r2");
    expect(bytesEqual(body, preProduced)).toBe(true);
    expect(image).toEqual({ format: "webp", width: 200, height: 100 });
    // Cached on the way out: the next one is a hit.
    expect((await call(`/${stem}_200_100.jpg?caplist=webp,jpg`)).res.headers.get("X-Image-Source")).toBe("cache");
  });

  it("serves a pushed HEIC byte for byte to a client that lists it (no HEIC encoder exists)", async () => {
    const { stem } = await jpegOriginal();
    const heic = fixture("rainbowHeic");
    await put(`${stem}.heic`, heic);
    const { res, body, image } = await call(`/${stem}.jpg?caplist=heic,jpg`);
    expect(res.headers.get("Content-Type")).toBe("image/heic");
    expect(bytesEqual(body, heic)).toBe(true);
    expect(image).toEqual({ format: "heic", width: 452, height: 462 });
    // Without a stored HEIC the candidate misses and JPEG follows.
    const { stem: other } = await jpegOriginal();
    const fallback = await call(`/${other}.jpg?caplist=heic,jpg`);
    expect(fallback.res.headers.get("X-Image-Tried")).toBe("heic=miss,jpg=r2");
    expect(fallback.image).toEqual({ format: "jpg", width: 640, height: 480 });
  });

  it("falls back past a format that fails: a corrupt stored AVIF and a corrupt HEIC original", async () => {
    const stem = `${uniquePrefix()}/pic`;
    // Only a corrupt HEIC original and a PNG mislabelled as AVIF are stored, plus a good WebP.
    await put(`${stem}.heic`, fixture("corruptedHeic"));
    await put(`${stem}.avif`, await encodeTo("png", gradient(10, 10)));
    const preWebp = await encodeTo("webp", gradient(50, 50));
    await put(`${stem}.webp`, preWebp);
    const { res, body, image } = await call(`/${stem}.heic?caplist=avif,webp,jpg`);
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Image-Tried")).toMatch(/^avif=(decode-error|bad-source),webp=r2$/);
    expect(bytesEqual(body, preWebp)).toBe(true);
    expect(image).toEqual({ format: "webp", width: 50, height: 50 });
  });

  it("answers 404 only when every candidate fails, listing each verdict", async () => {
    const { stem } = await jpegOriginal();
    const { res, body } = await call(`/${stem}.jpg?caplist=heic`);
    expect(res.status).toBe(404);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(res.headers.get("Vary")).toBeNull();
    expect(JSON.parse(new TextDecoder().decode(body))).toEqual({
      error: "not_found",
      message: expect.any(String),
      candidates: [{ format: "heic", verdict: "miss" }],
    });
    const missing = await call(`/${uniquePrefix()}/none.jpg`, { headers: { Accept: BROWSERS.chrome } });
    expect(missing.res.status).toBe(404);
    expect(missing.res.headers.get("Vary")).toBe("Accept");
    expect(JSON.parse(new TextDecoder().decode(missing.body)).candidates).toEqual([
      { format: "avif", verdict: "no-source" },
      { format: "webp", verdict: "no-source" },
      { format: "jpg", verdict: "no-source" },
    ]);
  });

  it("refuses to decode a source whose header declares too many pixels (bomb guard)", async () => {
    const stem = `${uniquePrefix()}/giant`;
    await put(`${stem}.jpg`, fixture("giantJpeg"));
    const started = Date.now();
    const { res, body } = await call(`/${stem}_100_100.jpg?caplist=webp,jpg`);
    expect(res.status).toBe(404);
    expect(JSON.parse(new TextDecoder().decode(body)).candidates).toEqual([
      { format: "webp", verdict: "source-too-large" },
      { format: "jpg", verdict: "source-too-large" },
    ]);
    // Decoding 280 MP would take many seconds and over a gigabyte; the header check takes none.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("transcodes from the best stored original when the URL names a format that is not stored", async () => {
    const stem = `${uniquePrefix()}/photo`;
    await put(`${stem}.png`, fixture("kodim23Png"));
    const { res, image } = await call(`/${stem}_400_0.jpg?caplist=avif,jpg`);
    expect(res.headers.get("X-Image-Tried")).toBe("avif=transcode");
    expect(image).toEqual({ format: "avif", width: 400, height: 267 });
  });

  it("decodes a real camera JPEG and an AVIF original", async () => {
    const stem = `${uniquePrefix()}/camera`;
    await put(`${stem}.jpg`, fixture("cameraJpeg"));
    const cam = await call(`/${stem}_0_400.jpg?caplist=webp`);
    expect(cam.image).toEqual({ format: "webp", width: 300, height: 400 });
    const fox = `${uniquePrefix()}/fox`;
    await put(`${fox}.avif`, fixture("foxAvif"));
    const jpg = await call(`/${fox}_301_200.avif?caplist=jpg`);
    expect(jpg.image).toEqual({ format: "jpg", width: 301, height: 200 });
  });

  it("writes on-demand JPEGs progressive by default (SPEED jpg:0) and in one scan with jpg:1, both 4:2:0", async () => {
    const stem = `${uniquePrefix()}/scan`;
    await put(`${stem}.png`, await encodeTo("png", gradient(320, 200)));
    // The frame marker after SOI names the coding process (T.81 B.1.1.3): SOF0/1 baseline and
    // extended sequential, SOF2 progressive. libjpeg writes SOF0 or SOF2.
    // The frame header (B.2.2) gives each component's sampling factors: luma 2x2 is 4:2:0, 2x1 4:2:2.
    const sof = (b: ArrayBuffer) => {
      const u = new Uint8Array(b);
      for (let i = 2; i + 3 < u.length; i += 2 + ((u[i + 2] << 8) | u[i + 3])) if (u[i + 1] >= 0xc0 && u[i + 1] <= 0xc2) return { process: u[i + 1] - 0xc0, luma: u[i + 11].toString(16) };
      return null;
    };
    const small = await call(`/${stem}_160_0.png?caplist=jpg`);
    expect(small.image).toEqual({ format: "jpg", width: 160, height: 100 });
    expect(sof(small.body)).toEqual({ process: 2, luma: "22" });
    const fast = await call(`/${stem}_161_0.png?caplist=jpg`, {}, { SPEED: "avif:8,webp:4,jpg:1" });
    expect(fast.image).toEqual({ format: "jpg", width: 161, height: 101 });
    expect(sof(fast.body)).toEqual({ process: 0, luma: "22" });
    const bad = await call(`/${stem}_162_0.png?caplist=jpg`, {}, { SPEED: "jpg:2" });
    expect(bad.res.status).toBe(500);
    expect(JSON.parse(new TextDecoder().decode(bad.body)).message).toContain("SPEED: expected jpg between 0 and 1");
  });

  it("serves the URL's alias spelling from R2 and writes AVIF back to R2 by default", async () => {
    const stem = `${uniquePrefix()}/alias`;
    const bytes = await encodeTo("jpg", gradient(90, 60));
    await put(`${stem}.jpeg`, bytes);
    const { res, body } = await call(`/${stem}.jpeg`);
    expect(res.headers.get("X-Image-Source")).toBe("r2");
    expect(bytesEqual(body, bytes)).toBe(true);

    const avif = await call(`/${stem}_45_30.jpeg?caplist=avif`);
    expect(avif.image).toEqual({ format: "avif", width: 45, height: 30 });
    const stored = await env.IMAGES.get(`${stem}_45_30.avif`);
    expect(stored?.customMetadata).toMatchObject({ producedBy: "on-demand", sourceKey: `${stem}.jpeg` });
    expect(bytesEqual(await stored!.arrayBuffer(), avif.body)).toBe(true);
    // WebP is not written back by default.
    await call(`/${stem}_45_30.jpeg?caplist=webp`);
    expect(await env.IMAGES.head(`${stem}_45_30.webp`)).toBeNull();
  });

  it("never transcodes from its own full-size write-back: the next size comes from the origin's original", async () => {
    const stem = `${uniquePrefix()}/wb`;
    await put(`${stem}.png`, await encodeTo("png", gradient(320, 240)));
    // A full-size AVIF view is written back as `<stem>.avif`, a full-size sibling of the original.
    const full = await call(`/${stem}.png?caplist=avif`);
    expect(full.image).toEqual({ format: "avif", width: 320, height: 240 });
    expect((await env.IMAGES.head(`${stem}.avif`))?.customMetadata?.producedBy).toBe("on-demand");
    // The URL names that AVIF (preferred key) and AVIF ranks as a source too: the PNG must still win.
    const avif = await call(`/${stem}_161_0.avif?caplist=avif`);
    expect((await env.IMAGES.head(`${stem}_161_0.avif`))?.customMetadata?.sourceKey).toBe(`${stem}.png`);
    expect(avif.image).toEqual({ format: "avif", width: 161, height: 121 });
  });

  it("never overwrites an object stored meanwhile when writing back", async () => {
    const real = r2Store(env.IMAGES);
    const key = `${uniquePrefix()}/w_10_10.avif`;
    const origin = await encodeTo("avif", gradient(10, 10));
    expect(await real.putIfAbsent(key, origin, "image/avif", {})).toBe(true);
    expect(await real.putIfAbsent(key, new ArrayBuffer(8), "image/avif", {})).toBe(false);
    expect(bytesEqual(await (await env.IMAGES.get(key))!.arrayBuffer(), origin)).toBe(true);
  });
});

describe("sizes", () => {
  let stem: string;
  beforeAll(async () => {
    ({ stem } = await jpegOriginal());
  });

  it.each([
    ["_320_320", 320, 320],
    ["_300_0", 300, 225],
    ["_0_120", 160, 120],
    ["_2000_2000", 480, 480],
    ["_1000_0", 640, 480],
  ])("%s gives %ix%i", async (suffix, width, height) => {
    const { res, image } = await call(`/${stem}${suffix}.jpg?caplist=jpg`);
    expect(res.status).toBe(200);
    expect(image).toEqual({ format: "jpg", width, height });
  });

  it.each(["_0_0", "_5000_10", "_10_99999"])("%s is a 400", async (suffix) => {
    const { res, body } = await call(`/${stem}${suffix}.jpg?caplist=jpg`);
    expect(res.status).toBe(400);
    expect(JSON.parse(new TextDecoder().decode(body))).toMatchObject({ error: "bad_size", message: expect.any(String) });
  });
});

describe("HTTP semantics", () => {
  it("answers If-None-Match with 304, keeping ETag, Cache-Control and Vary", async () => {
    const { stem } = await jpegOriginal();
    const first = await call(`/${stem}_64_0.jpg`, { headers: { Accept: BROWSERS.safari15 } });
    const etag = first.res.headers.get("ETag")!;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(first.res.headers.get("Cache-Control")).toBe("public, max-age=31536000, immutable");
    const revalidated = await call(`/${stem}_64_0.jpg`, { headers: { Accept: BROWSERS.safari15, "If-None-Match": `"nope", ${etag}` } });
    expect(revalidated.res.status).toBe(304);
    expect(revalidated.body.byteLength).toBe(0);
    expect(revalidated.res.headers.get("ETag")).toBe(etag);
    expect(revalidated.res.headers.get("Vary")).toBe("Accept");
    const changed = await call(`/${stem}_64_0.jpg`, { headers: { Accept: BROWSERS.safari15, "If-None-Match": `"other"` } });
    expect(changed.res.status).toBe(200);
    expect(changed.image).toEqual({ format: "webp", width: 64, height: 48 });
  });

  it("answers HEAD with the GET headers and no body", async () => {
    const { stem } = await jpegOriginal();
    const get = await call(`/${stem}_50_50.jpg?caplist=png`);
    const head = await call(`/${stem}_50_50.jpg?caplist=png`, { method: "HEAD" });
    expect(head.res.status).toBe(200);
    expect(head.body.byteLength).toBe(0);
    for (const h of ["Content-Type", "Content-Length", "ETag", "Cache-Control"]) {
      expect(head.res.headers.get(h)).toBe(get.res.headers.get(h));
    }
    expect(Number(head.res.headers.get("Content-Length"))).toBe(get.body.byteLength);
    expect(get.image).toEqual({ format: "png", width: 50, height: 50 });
  });

  it("sends Content-Length matching the body on every source", async () => {
    const { stem } = await jpegOriginal();
    for (let i = 0; i < 2; i++) {
      const { res, body } = await call(`/${stem}.jpg?caplist=webp`);
      expect(Number(res.headers.get("Content-Length"))).toBe(body.byteLength);
    }
  });

  it.each([
    ["/a/..%2Fb.jpg", "bad_key"],
    ["/a/%5Cb.jpg", "bad_key"],
    ["/a/b.bmp", "bad_extension"],
    ["/a/%E0%A4%A.jpg", "bad_key"],
    ["/a/b", "bad_key"],
  ])("%s is a 400 %s with a JSON body", async (path, code) => {
    const { res, body } = await call(path);
    expect(res.status).toBe(400);
    expect(res.headers.get("Content-Type")).toContain("application/json");
    expect(JSON.parse(new TextDecoder().decode(body))).toMatchObject({ error: code });
  });

  it("keeps /_api/ and /_cdn/ reserved and refuses other methods", async () => {
    for (const reserved of ["_api", "_cdn"]) {
      const stem = `${reserved}/${uniquePrefix()}`;
      await put(`${stem}.jpg`, await encodeTo("jpg", gradient(8, 8)));
      const { res } = await call(`/${stem}.jpg?caplist=jpg`);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.headers.get("Content-Type")).toContain("application/json");
    }
    const post = await call(`/x.jpg`, { method: "POST", body: "x" });
    expect(post.res.status).toBe(405);
  });

  it("fails loudly on invalid configuration, naming the variable", async () => {
    const { res, body } = await call(`/x.jpg`, {}, { QUALITY: "avif:500" });
    expect(res.status).toBe(500);
    const json = JSON.parse(new TextDecoder().decode(body));
    expect(json.error).toBe("config_invalid");
    expect(json.message).toContain("QUALITY");
    // The next request with a valid env is served normally.
    expect((await call(`/x.jpg?caplist=jxl`)).res.status).toBe(400);
  });
});
