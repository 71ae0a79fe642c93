/**
 * The origin push API inside workerd with real R2 and Cache; uploads are real corpus files and
 * images from the real encoders, and what delivery serves afterwards is decoded.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { decode } from "../src/produce/codec-session";
import { bytesEqual, call, encodeTo, fixture, gradient, uniquePrefix, type Fetched } from "./helpers";

const TOKEN = "test-token-0123456789abcdef";
const ROTATED = "rotated-token-fedcba9876543210";
const auth = (token = TOKEN) => ({ Authorization: `Bearer ${token}` });

const api = (method: string, path: string, body?: ArrayBuffer | Uint8Array | ReadableStream | null, headers: Record<string, string> = auth()) =>
  call(`/_api/${path}`, { method, body, headers, ...(body instanceof ReadableStream ? { duplex: "half" } : {}) } as RequestInit);
const json = (f: Fetched) => JSON.parse(new TextDecoder().decode(f.body));

/** A solid-colour image, so a test can tell two uploads apart from decoded pixels. */
function solid(width: number, height: number, rgb: [number, number, number]) {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([...rgb, 255], i * 4);
  return { data, width, height };
}

describe("authentication", () => {
  it("401 without a token, 403 with a wrong one, for writes and reads alike", async () => {
    const key = `${uniquePrefix()}/a.jpg`;
    for (const [method, path] of [["PUT", `objects/${key}`], ["GET", `objects/${key}`], ["DELETE", `objects/${key}`], ["GET", "images/x"]]) {
      const none = await api(method, path, method === "PUT" ? new Uint8Array([1]) : null, {});
      expect(none.res.status).toBe(401);
      expect(none.res.headers.get("WWW-Authenticate")).toContain("Bearer");
      expect(json(none)).toMatchObject({ error: "unauthorized", message: expect.any(String) });
      const wrong = await api(method, path, method === "PUT" ? new Uint8Array([1]) : null, auth("test-token-0123456789abcdeX"));
      expect(wrong.res.status).toBe(403);
      expect(json(wrong)).toMatchObject({ error: "forbidden" });
    }
    const basic = await api("GET", `objects/${key}`, null, { Authorization: "Basic dXNlcjpwYXNz" });
    expect(basic.res.status).toBe(401);
  });

  it("accepts every configured token (rotation)", async () => {
    const key = `${uniquePrefix()}/a.jpg`;
    expect((await api("GET", `objects/${key}`, null, auth(ROTATED))).res.status).toBe(404);
    expect((await api("GET", `objects/${key}`, null, auth(TOKEN))).res.status).toBe(404);
  });
});

describe("PUT, GET, DELETE and the manifest", () => {
  it("round trip: push an original, deliver it under several caplists, delete it, 404", async () => {
    const stem = `${uniquePrefix()}/cover`;
    const original = fixture("kodim23Png");
    const put = await api("PUT", `objects/${stem}.png`, original);
    expect(put.res.status).toBe(201);
    const body = json(put);
    expect(body).toEqual({ key: `${stem}.png`, format: "png", width: 768, height: 512, bytes: original.byteLength, etag: expect.stringMatching(/^".+"$/) });
    expect(put.res.headers.get("ETag")).toBe(body.etag);

    const stored = await env.IMAGES.head(`${stem}.png`);
    expect(stored?.httpMetadata?.contentType).toBe("image/png");
    expect(stored?.customMetadata).toMatchObject({ format: "png", width: "768", height: "512" });

    const meta = await api("GET", `objects/${stem}.png`);
    expect(json(meta)).toMatchObject({ key: `${stem}.png`, format: "png", width: 768, height: 512, bytes: original.byteLength, etag: body.etag });

    for (const [caplist, format] of [["avif,webp,jpg", "avif"], ["webp,jpg", "webp"], ["jpg", "jpg"], ["png", "png"]] as const) {
      const got = await call(`/${stem}_384_0.png?caplist=${caplist}`);
      expect(got.image).toEqual({ format, width: 384, height: 256 });
    }

    const del = await api("DELETE", `objects/${stem}.png`);
    expect(del.res.status).toBe(204);
    expect((await api("DELETE", `objects/${stem}.png`)).res.status).toBe(204);
    expect((await api("GET", `objects/${stem}.png`)).res.status).toBe(404);
    // The cached and written-back variants went with the original.
    for (const caplist of ["avif,webp,jpg", "webp,jpg", "jpg", "png"]) {
      expect((await call(`/${stem}_384_0.png?caplist=${caplist}`)).res.status).toBe(404);
    }
    expect(await env.IMAGES.head(`${stem}_384_256.avif`)).toBeNull();
  });

  it("serves a pushed HEIC byte for byte to caplist=heic,jpg and lists the stem's objects", async () => {
    const stem = `${uniquePrefix()}/photo`;
    const heic = fixture("rainbowHeic");
    const jpg = await encodeTo("jpg", gradient(1280, 854));
    expect((await api("PUT", `objects/${stem}.jpg`, jpg)).res.status).toBe(201);
    const put = await api("PUT", `objects/${stem}.heic`, heic);
    expect(put.res.status).toBe(201);
    expect(json(put)).toMatchObject({ format: "heic", width: 452, height: 462 });
    const small = await encodeTo("webp", gradient(405, 540));
    expect((await api("PUT", `objects/${stem}_405_540.webp`, small)).res.status).toBe(201);

    const got = await call(`/${stem}.jpg?caplist=heic,jpg`);
    expect(got.res.headers.get("Content-Type")).toBe("image/heic");
    expect(bytesEqual(got.body, heic)).toBe(true);

    const manifest = json(await api("GET", `images/${stem}`));
    expect(manifest.stem).toBe(stem);
    expect(manifest.objects.map((o: { key: string }) => o.key)).toEqual([`${stem}.heic`, `${stem}.jpg`, `${stem}_405_540.webp`]);
    expect(manifest.objects[2]).toMatchObject({ format: "webp", size: { width: 405, height: 540 }, width: 405, height: 540, bytes: small.byteLength, producedBy: "origin" });
  });

  it("a cached variant replaced by a new PUT is not served stale", async () => {
    const stem = `${uniquePrefix()}/swap`;
    const red = await encodeTo("png", solid(64, 64, [255, 0, 0]));
    const blue = await encodeTo("png", solid(64, 64, [0, 0, 255]));
    const firstPixel = async (f: Fetched) => [...(await decode(f.image!.format, f.body)).data.slice(0, 3)];

    await api("PUT", `objects/${stem}.png`, red);
    const before = await call(`/${stem}_32_32.png?caplist=webp`);
    expect((await call(`/${stem}_32_32.png?caplist=webp`)).res.headers.get("X-Image-Source")).toBe("cache");
    const [r] = await firstPixel(before);
    expect(r).toBeGreaterThan(200);

    await api("PUT", `objects/${stem}.png`, blue);
    const after = await call(`/${stem}_32_32.png?caplist=webp`);
    expect(after.res.headers.get("X-Image-Source")).toBe("transcode");
    const [r2, , b2] = await firstPixel(after);
    expect(r2).toBeLessThan(50);
    expect(b2).toBeGreaterThan(200);

    // A pushed variant replaces the cached copy of that variant too.
    const variant = await encodeTo("jpg", solid(32, 32, [0, 255, 0]));
    await api("PUT", `objects/${stem}_32_32.jpg`, variant);
    await call(`/${stem}_32_32.png?caplist=jpg`);
    const green = await encodeTo("jpg", solid(32, 32, [0, 250, 0]), 90);
    await api("PUT", `objects/${stem}_32_32.jpg`, green);
    const served = await call(`/${stem}_32_32.png?caplist=jpg`);
    expect(bytesEqual(served.body, green)).toBe(true);
  });
});

describe("hostile requests (issue 14)", () => {
  it("a malformed If-Match / If-None-Match is a 400, and what is stored stays", async () => {
    const key = `${uniquePrefix()}/v.png`;
    const original = await encodeTo("png", gradient(8, 8));
    expect((await api("PUT", `objects/${key}`, original)).res.status).toBe(201);
    for (const [name, value] of [["If-Match", "garbage"], ["If-Match", '"unterminated'], ["If-None-Match", "garbage"], ["If-None-Match", '"a", b']]) {
      const res = await api("PUT", `objects/${key}`, await encodeTo("png", gradient(9, 9)), { ...auth(), [name]: value });
      expect(res.res.status, `${name}: ${value}`).toBe(400);
      expect(json(res).error).toBe("bad_precondition");
    }
    expect(bytesEqual(await (await env.IMAGES.get(key))!.arrayBuffer(), original)).toBe(true);
    // Well-formed ones still work: a weak tag list, and *.
    expect((await api("PUT", `objects/${key}`, original, { ...auth(), "If-Match": 'W/"nope", "nope2"' })).res.status).toBe(412);
    expect((await api("PUT", `objects/${key}`, original, { ...auth(), "If-None-Match": "*" })).res.status).toBe(412);
  });

  it("a percent-encoded prefix does not shift the key", async () => {
    const p = uniquePrefix();
    const png = await encodeTo("png", gradient(8, 8));
    for (const path of [`/%5f%61%70%69/objects/${p}/a.png`, `/_api/%6fbjects/${p}/b.png`]) {
      const res = await call(path, { method: "PUT", body: png, headers: auth() });
      expect(res.res.status, path).toBe(201);
    }
    expect(await env.IMAGES.head(`${p}/a.png`)).not.toBeNull();
    expect(await env.IMAGES.head(`${p}/b.png`)).not.toBeNull();
    expect(await env.IMAGES.head(`objects/${p}/a.png`)).toBeNull();
    expect(await env.IMAGES.head(`s/${p}/b.png`)).toBeNull();
  });

  it("an empty stem lists nothing, and a full-size key leaves room for its variants", async () => {
    const empty = await api("GET", "images/", null);
    expect(empty.res.status).toBe(400);
    expect(json(empty).error).toBe("bad_key");
    const png = await encodeTo("png", gradient(8, 8));
    const stem = (n: number) => `${uniquePrefix()}/`.padEnd(n - 4, "k");
    expect((await api("PUT", `objects/${stem(1013)}.png`, png)).res.status).toBe(400);
    const fits = `${stem(1012)}.png`;
    expect((await api("PUT", `objects/${fits}`, png)).res.status).toBe(201);
    const variant = await call(`/${fits.replace(/\.png$/, "_16383_16383.png")}?caplist=png`, {}, { MAX_DIMENSION: "16383" });
    expect(variant.res.status).toBe(200);
  });
});

describe("a stale DELETE (issue 30)", () => {
  it("honours If-Match and If-None-Match: a DELETE for v1 never removes v2", async () => {
    const key = `${uniquePrefix()}/v.png`;
    const v1 = await encodeTo("png", gradient(8, 8));
    const v2 = await encodeTo("png", gradient(9, 9));
    const etag1 = json(await api("PUT", `objects/${key}`, v1)).etag;
    const etag2 = json(await api("PUT", `objects/${key}`, v2)).etag;
    expect(etag2).not.toBe(etag1);
    for (const [name, value] of [["If-Match", etag1], ["If-Match", `W/${etag2}`], ["If-None-Match", "*"], ["If-None-Match", etag2]]) {
      const res = await api("DELETE", `objects/${key}`, null, { ...auth(), [name]: value });
      expect(res.res.status, `${name}: ${value}`).toBe(412);
      expect(json(res).error).toBe("precondition_failed");
      expect(bytesEqual(await (await env.IMAGES.get(key))!.arrayBuffer(), v2)).toBe(true);
    }
    expect((await api("DELETE", `objects/${key}`, null, { ...auth(), "If-Match": `"nope", ${etag2}` })).res.status).toBe(204);
    expect(await env.IMAGES.head(key)).toBeNull();
    // Nothing stored: If-Match fails, If-None-Match: * holds.
    expect((await api("DELETE", `objects/${key}`, null, { ...auth(), "If-Match": "*" })).res.status).toBe(412);
    expect((await api("DELETE", `objects/${key}`, null, { ...auth(), "If-None-Match": "*" })).res.status).toBe(204);
    expect((await api("DELETE", `objects/${key}`, null, { ...auth(), "If-Match": "garbage" })).res.status).toBe(400);
  });
});

describe("keys the cache and the purge index must keep apart (issue 30)", () => {
  it("a `#` or `?` in a key never makes two variants share one cache entry", async () => {
    for (const name of ["hash#1", "what?x=1"]) {
      const stem = `${uniquePrefix()}/${name}`;
      const escaped = stem.split("/").map(encodeURIComponent).join("/");
      expect((await api("PUT", `objects/${escaped}.png`, await encodeTo("png", gradient(64, 48)))).res.status).toBe(201);
      const path = (size: string) => `/${escaped}${size}.png`;
      const small = await call(`${path("_16_12")}?caplist=jpg`);
      expect(small.image, name).toEqual({ format: "jpg", width: 16, height: 12 });
      // The cache hit of the same variant works...
      expect((await call(`${path("_16_12")}?caplist=jpg`)).res.headers.get("X-Image-Source")).toBe("cache");
      // ...and another variant is its own.
      const large = await call(`${path("_40_30")}?caplist=webp`);
      expect(large.image, name).toEqual({ format: "webp", width: 40, height: 30 });
      expect(large.res.headers.get("Content-Type")).toBe("image/webp");
    }
  });

  it("variants of a key too long for the purge index's plain entry are purged when it is replaced", async () => {
    const stem = `${uniquePrefix()}/`.padEnd(1008, "k");
    const key = `${stem}.png`;
    expect(new TextEncoder().encode(key).length).toBe(1012);
    const variant = `/${stem}_32_32.png?caplist=webp`;
    await api("PUT", `objects/${key}`, await encodeTo("png", solid(64, 64, [255, 0, 0])));
    expect((await call(variant)).res.status).toBe(200);
    expect((await call(variant)).res.headers.get("X-Image-Source")).toBe("cache");
    await api("PUT", `objects/${key}`, await encodeTo("png", solid(64, 64, [0, 0, 255])));
    const after = await call(variant);
    expect(after.res.headers.get("X-Image-Source")).toBe("transcode");
    const [r, , b] = (await decode("webp", after.body)).data;
    expect(r).toBeLessThan(50);
    expect(b).toBeGreaterThan(200);
  });
});

describe("multipart uploads (curl -F file=@photo.jpg)", () => {
  it("stores the one file part, whatever its field name, and serves it", async () => {
    const stem = `${uniquePrefix()}/form`;
    const original = fixture("kodim23Png");
    const form = new FormData();
    form.append("note", "ignored text field");
    form.append("image", new File([original], "parrots.png", { type: "image/png" }));
    const req = new Request("https://x/", { method: "PUT", body: form });
    const put = await api("PUT", `objects/${stem}.png`, await req.arrayBuffer(), { ...auth(), "Content-Type": req.headers.get("Content-Type")! });
    expect(put.res.status).toBe(201);
    expect(json(put)).toMatchObject({ format: "png", width: 768, height: 512, bytes: original.byteLength });
    const stored = await env.IMAGES.get(`${stem}.png`);
    expect(bytesEqual(await stored!.arrayBuffer(), original)).toBe(true);
    expect((await call(`/${stem}_200_0.png?caplist=webp`)).image).toEqual({ format: "webp", width: 200, height: 133 });
  });

  it("a form without exactly one file part, or a broken one, is a 400 that names --data-binary", async () => {
    const key = `${uniquePrefix()}/form.png`;
    const none = new Request("https://x/", { method: "PUT", body: (() => { const f = new FormData(); f.append("a", "b"); return f; })() });
    const broken = { body: new TextEncoder().encode("--zzz\r\nContent-Disposition: form-da"), type: "multipart/form-data; boundary=zzz" };
    for (const [body, type] of [[await none.arrayBuffer(), none.headers.get("Content-Type")!], [broken.body, broken.type]] as const) {
      const res = await api("PUT", `objects/${key}`, body, { ...auth(), "Content-Type": type });
      expect(res.res.status).toBe(400);
      expect(json(res).error).toBe("bad_multipart");
      expect(json(res).message).toContain("--data-binary");
    }
    expect(await env.IMAGES.head(key)).toBeNull();
  });

  it("a raw body that is no image says how to send one", async () => {
    const res = await api("PUT", `objects/${uniquePrefix()}/a.png`, new TextEncoder().encode("hello"));
    expect(res.res.status).toBe(415);
    expect(json(res).message).toContain("--data-binary");
  });
});

describe("validation: refused uploads leave what was stored untouched", () => {
  const cases: [string, string, () => ArrayBuffer | Promise<ArrayBuffer>, number, string][] = [
    ["a PNG named .jpg", "jpg", () => fixture("kodim23Png"), 415, "format_mismatch"],
    ["a HEIC named .avif", "avif", () => fixture("rainbowHeic"), 415, "format_mismatch"],
    ["text named .png", "png", () => new TextEncoder().encode("<html>not an image</html>").buffer as ArrayBuffer, 415, "unsupported_media_type"],
    ["a truncated JPEG", "jpg", () => fixture("cameraJpeg").slice(0, 30), 422, "bad_image"],
    ["a corrupt JPEG header (sharp fixture)", "jpg", () => fixture("corruptHeaderJpeg"), 422, "bad_image"],
    ["a 20000x14000 JPEG bomb", "jpg", () => fixture("giantJpeg"), 422, "image_too_large"],
    ["a 64250x64250 SOF in 4.8 KB (lottapixel)", "jpg", () => fixture("lottapixelJpeg"), 422, "image_too_large"],
  ];

  it.each(cases)("%s is refused", async (_name, ext, bytes, status, code) => {
    const key = `${uniquePrefix()}/keep.${ext}`;
    const original = await encodeTo(ext === "jpg" ? "jpg" : ext === "png" ? "png" : "avif", gradient(40, 30));
    const first = await api("PUT", `objects/${key}`, original);
    expect(first.res.status).toBe(201);

    const refused = await api("PUT", `objects/${key}`, await bytes());
    expect(refused.res.status).toBe(status);
    expect(json(refused)).toEqual({ error: code, message: expect.any(String) });

    const still = await env.IMAGES.get(key);
    expect(bytesEqual(await still!.arrayBuffer(), original)).toBe(true);
    expect(still!.httpEtag).toBe(json(first).etag);
  });

  it("refuses bad keys with 400", async () => {
    const png = await encodeTo("png", gradient(4, 4));
    for (const path of ["objects/a/..%2Fb.png", "objects/%2Fabs.png", "objects/a%5Cb.png", "objects/a%01b.png", "objects/a/b.bmp", "objects/a/b", "objects/_cdn/x.png", `objects/${"k".repeat(1030)}.png`]) {
      const res = await api("PUT", path, png);
      expect(res.res.status, path).toBe(400);
      expect(json(res).error).toMatch(/^bad_(key|extension)$/);
    }
  });

  it("413 from Content-Length before reading, and while reading a chunked body", async () => {
    const key = `${uniquePrefix()}/big.png`;
    const small = await encodeTo("png", gradient(8, 8));
    const declared = await call(`/_api/objects/${key}`, {
      method: "PUT",
      body: small,
      headers: { ...auth(), "Content-Length": String(26 * 1024 * 1024) },
    });
    expect(declared.res.status).toBe(413);

    const limitVars = { MAX_UPLOAD_BYTES: "1000" };
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(400));
        controller.close();
      },
    });
    const streamed = await call(`/_api/objects/${key}`, { method: "PUT", body: chunked, headers: auth(), duplex: "half" } as RequestInit, limitVars);
    expect(streamed.res.status).toBe(413);
    expect(json(streamed).error).toBe("payload_too_large");
    expect(await env.IMAGES.head(key)).toBeNull();
  });

  it("If-None-Match: * and If-Match protect a newer object (412)", async () => {
    const key = `${uniquePrefix()}/cond.png`;
    const v1 = await encodeTo("png", gradient(10, 10));
    const v2 = await encodeTo("png", gradient(12, 12));
    const create = await api("PUT", `objects/${key}`, v1, { ...auth(), "If-None-Match": "*" });
    expect(create.res.status).toBe(201);
    const again = await api("PUT", `objects/${key}`, v2, { ...auth(), "If-None-Match": "*" });
    expect(again.res.status).toBe(412);
    expect(json(again).error).toBe("precondition_failed");
    const stale = await api("PUT", `objects/${key}`, v2, { ...auth(), "If-Match": '"0123456789abcdef0123456789abcdef"' });
    expect(stale.res.status).toBe(412);
    expect(bytesEqual(await (await env.IMAGES.get(key))!.arrayBuffer(), v1)).toBe(true);
    const fresh = await api("PUT", `objects/${key}`, v2, { ...auth(), "If-Match": json(create).etag });
    expect(fresh.res.status).toBe(201);
    expect(json(fresh)).toMatchObject({ width: 12, height: 12 });
  });

  it("answers unknown API paths with JSON 404 and keeps serving images", async () => {
    const res = await api("GET", "nope");
    expect(res.res.status).toBe(404);
    expect(json(res).error).toBe("not_found");
  });
});
