/**
 * Hostile input, round two (issue 30): shapes whose cost is not in their size. Each test makes
 * its input here, small, and asserts on what must hold.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CodecSession, decode, encode } from "../src/produce/codec-session";
import { openJpeg } from "../src/codecs/jpeg";
import { animationPixels, readHeader } from "../src/headers";
import { formatSpec } from "../src/formats";
import { MAX_JPEG_SCANS } from "../src/formats/jpeg";
import { predictCost } from "../src/produce/budget";
import { drainIdle, idleBytes } from "../src/codecs/resident";
import { isolateGate } from "../src/produce/admission";
import { bytesEqual, call, fixture, put, uniquePrefix, withExtraScans } from "./helpers";

const MiB = 2 ** 20;

const TOKEN = "test-token-0123456789abcdef";

describe("a progressive JPEG's scans", () => {
  it("are counted: each beyond the first dozen is priced, and a file over the cap is refused", () => {
    const plain = fixture("progressiveSmall");
    const scans = readHeader(new Uint8Array(plain))!.jpeg!.scans;
    // libjpeg's default progression for colour: 10 scans.
    expect(scans).toBe(10);
    const many = readHeader(new Uint8Array(withExtraScans(plain, 80)))!;
    expect(many.jpeg!.scans).toBe(90);
    // The same structure over 4096x4096: 78 scans beyond a dozen, about 1.6 ms per megapixel each.
    const structureMs = formatSpec("jpg").cost.structureMs!({ ...many, width: 4096, height: 4096 });
    expect(structureMs).toBeGreaterThan(2000);
    expect(formatSpec("jpg").cost.structureMs!(readHeader(new Uint8Array(plain))!)).toBe(0);
    const cpu = (extra?: number) => predictCost({ sourceFormat: "jpg", sourcePixels: 4096 * 4096, sourceBytes: 1e5, streamed: { scaledPixels: 1e6, decoderBytes: 1e7, bandBytes: 0 }, outputFormat: "webp", outputPixels: 1e6, settings: { quality: 80, speed: 4 }, pixelsReady: false, structureMs: extra }).cpuMs;
    expect(cpu(structureMs) - cpu()).toBeCloseTo(structureMs);
    expect(() => readHeader(new Uint8Array(withExtraScans(plain, MAX_JPEG_SCANS)))).toThrow(/110 scans; at most 100/);
  });

  it("the decoder itself stops past its cap, and decodes a file within it", async () => {
    const plain = fixture("progressiveSmall");
    expect(() => {
      const d = openJpeg(plain, 1, 5);
      while (d.read()) {}
    }).toThrow(/too many scans/);
    const decoded = await new CodecSession().decode("jpg", withExtraScans(plain, 20));
    expect([decoded.width, decoded.height]).toEqual([96, 64]);
  });

  it("an upload over the cap is a 422 naming it, and a GET of one stored anyway is a 4xx, never a 5xx", async () => {
    const bomb = withExtraScans(fixture("progressiveSmall"), 200);
    const key = `${uniquePrefix()}/scans`;
    const res = await call(`/_api/objects/${key}.jpg`, { method: "PUT", body: bomb, headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(res.res.status).toBe(422);
    expect(new TextDecoder().decode(res.body)).toMatch(/210 scans/);
    await put(`${key}.jpg`, bomb);
    const get = await call(`/${key}_48_0.jpg?caplist=webp`);
    expect(get.res.status).toBeGreaterThanOrEqual(400);
    expect(get.res.status).toBeLessThan(500);
  });
});

describe("a GIF frame larger than its logical screen", () => {
  it("is decoded clipped to the screen, holding only the screen's indices", async () => {
    const gif = fixture("gifFrameOverScreen");
    const header = readHeader(new Uint8Array(gif))!;
    expect([header.width, header.height]).toEqual([64, 64]);
    // Priced and checked by the frame's own size.
    expect(animationPixels(header)).toBe(4000 * 3000);
    expect(formatSpec("gif").cost.structureMs!(header)).toBeGreaterThan(150);
    const session = new CodecSession();
    const pixels = await session.decode("gif", gif);
    expect([pixels.width, pixels.height]).toEqual([64, 64]);
    // The frame's top-left corner: red.
    expect([...pixels.data.slice(0, 4)]).toEqual([255, 0, 0, 255]);
    expect([...pixels.data.slice(-4)]).toEqual([255, 0, 0, 255]);
    // giflib's memory stayed at its start: the 12 MB of the frame's indices were never held.
    expect(session.peakBytes).toBeLessThan(4 * 2 ** 20);
  });

  it("is refused by its own size at upload and on delivery", async () => {
    const gif = fixture("gifFrameOverScreen");
    const key = `${uniquePrefix()}/frame`;
    const up = await call(`/_api/objects/${key}.gif`, { method: "PUT", body: gif, headers: { Authorization: `Bearer ${TOKEN}` } }, { MAX_UPLOAD_PIXELS: "1000000" });
    expect(up.res.status).toBe(422);
    expect(new TextDecoder().decode(up.body)).toMatch(/12000000 pixels/);
    await put(`${key}.gif`, gif);
    const get = await call(`/${key}.gif?caplist=webp`, {}, { MAX_SOURCE_PIXELS: "1000000" });
    expect(get.res.status).toBeGreaterThanOrEqual(400);
    expect(get.res.status).toBeLessThan(500);
    expect(get.res.headers.get("X-Image-Tried")).toMatch(/source-too-large/);
    // Within the limits it is served at the screen's size.
    const ok = await call(`/${key}.gif?caplist=webp`);
    expect(ok.image).toEqual({ format: "webp", width: 64, height: 64 });
  });
});

/** A solid-colour image, so each version of an original is told apart by any pixel. */
function solid(width: number, height: number, rgb: [number, number, number]) {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < data.length; i += 4) data.set([...rgb, 255], i);
  return { data, width, height };
}

/** The centre pixel's colour of an encoded image. */
async function centre(bytes: ArrayBuffer): Promise<number[]> {
  const header = readHeader(new Uint8Array(bytes))!;
  const px = await decode(header.format, bytes);
  const i = (Math.floor(px.height / 2) * px.width + Math.floor(px.width / 2)) * 4;
  return [...px.data.subarray(i, i + 3)];
}
const isRed = (c: number[]) => c[0] > 200 && c[2] < 60;
const isBlue = (c: number[]) => c[2] > 200 && c[0] < 60;

/**
 * The real bucket, except that the first read of `key` lands exactly as an origin's push of a
 * new version does mid-production: the read returns the old bytes, and the push (through the
 * worker's API, with its purge) completes before the production goes on.
 */
function replacedWhileRead(bucket: R2Bucket, key: string, replace: () => Promise<void>): R2Bucket {
  let done = false;
  return new Proxy(bucket, {
    get(target, prop) {
      if (prop !== "get") return (target as any)[prop].bind(target);
      return async (k: string, opts?: R2GetOptions) => {
        const obj = await target.get(k, opts);
        if (k !== key || done || !obj || !("arrayBuffer" in obj)) return obj;
        done = true;
        const bytes = await obj.arrayBuffer();
        await replace();
        return { key: obj.key, size: obj.size, httpEtag: obj.httpEtag, etag: obj.etag, customMetadata: obj.customMetadata, httpMetadata: obj.httpMetadata, arrayBuffer: async () => bytes };
      };
    },
  });
}

describe("an original replaced while a variant is produced from it", () => {
  for (const format of ["avif", "webp"] as const) {
    it(`leaves no stale ${format} variant in the edge cache or in R2`, async () => {
      const stem = `${uniquePrefix()}/swap`;
      const key = `${stem}.jpg`;
      await put(key, await encode("jpg", solid(320, 240, [230, 20, 20]), { quality: 90, speed: 1 }));
      const v2 = await encode("jpg", solid(320, 240, [20, 20, 230]), { quality: 90, speed: 1 });
      const push = async () => {
        const res = await call(`/_api/objects/${key}`, { method: "PUT", body: v2, headers: { Authorization: `Bearer ${TOKEN}` } });
        expect([200, 201]).toContain(res.res.status);
      };
      const url = `/${stem}_100_0.jpg?caplist=${format}`;
      const racing = await call(url, {}, { IMAGES: replacedWhileRead(env.IMAGES, key, push) });
      // The racing request itself serves what it read (v1): it began before the push.
      expect(racing.image).toEqual({ format, width: 100, height: 75 });
      expect(isRed(await centre(racing.body))).toBe(true);
      // Afterwards, nothing made from v1 is left: every tier answers v2.
      const after = await call(url);
      expect(after.image).toEqual({ format, width: 100, height: 75 });
      expect(isBlue(await centre(after.body))).toBe(true);
      const stored = await env.IMAGES.get(`${stem}_100_0.${format}`);
      if (stored) expect(isBlue(await centre(await stored.arrayBuffer()))).toBe(true);
    });
  }
});

describe("alias spellings of one key", () => {
  const auth = { Authorization: `Bearer ${TOKEN}` };
  it("a variant is pushed and produced only under its canonical name; a second spelling of an original is refused", async () => {
    const stem = `${uniquePrefix()}/alias`;
    const red = await encode("jpg", solid(100, 100, [230, 20, 20]), { quality: 90, speed: 1 });
    for (const spelled of [`${stem}_0100_0100.jpg`, `${stem}_100_100.jpeg`, `${stem}_100_100.JPG`]) {
      const res = await call(`/_api/objects/${spelled}`, { method: "PUT", body: red, headers: auth });
      expect(res.res.status).toBe(400);
      expect(JSON.parse(new TextDecoder().decode(res.body)).message).toContain(`${stem}_100_100.jpg`);
      expect(await env.IMAGES.head(spelled)).toBeNull();
    }
    expect((await call(`/_api/objects/${stem}.jpg`, { method: "PUT", body: red, headers: auth })).res.status).toBe(201);
    const second = await call(`/_api/objects/${stem}.JPG`, { method: "PUT", body: red, headers: auth });
    expect(second.res.status).toBe(409);
    expect(JSON.parse(new TextDecoder().decode(second.body))).toMatchObject({ error: "spelling_conflict" });
    expect(await env.IMAGES.head(`${stem}.JPG`)).toBeNull();
    const job = await call(`/_api/jobs`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ msg_id: `${stem}-job`, cmd: "transcode", input_files: [{ key: `${stem}.jpg` }], output_files: [{ key: `${stem}_100_100.webp` }, { key: `${stem}_0100_0100.JPEG` }] }),
    });
    expect(job.res.status).toBe(400);
    expect(JSON.parse(new TextDecoder().decode(job.body)).message).toContain(`use ${stem}_100_100.jpg`);
  });

  it("a URL spelled as a stored object gets that object, not its canonical sibling", async () => {
    const stem = `${uniquePrefix()}/camera`;
    // Stored around the API (wrangler r2 object put), both spellings exist.
    await put(`${stem}.jpg`, await encode("jpg", solid(64, 48, [230, 20, 20]), { quality: 90, speed: 1 }));
    await put(`${stem}.JPG`, await encode("jpg", solid(64, 48, [20, 20, 230]), { quality: 90, speed: 1 }));
    const got = await call(`/${stem}.JPG?caplist=jpg`);
    expect(got.image).toEqual({ format: "jpg", width: 64, height: 48 });
    expect(isBlue(await centre(got.body))).toBe(true);
  });
});

/** Random pixels: what compresses worst, so a few megapixels make a file of megabytes. */
function noise(width: number, height: number) {
  const data = new Uint8ClampedArray(width * height * 4);
  let x = 12345;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = i % 4 === 3 ? 255 : x >>> 24;
  }
  return { data, width, height };
}

/** The real bucket, counting every whole-body read (arrayBuffer, text, json) of each key's objects. */
function countingReads(bucket: R2Bucket, onRead: (key: string) => void = () => {}) {
  const whole = new Map<string, number>();
  const wrapped = new Proxy(bucket, {
    get(target, prop) {
      if (prop !== "get") return (target as any)[prop].bind(target);
      return async (k: string, opts?: R2GetOptions) => {
        const obj = await target.get(k, opts);
        if (!obj || !("body" in obj)) return obj;
        const count = (read: () => Promise<unknown>) => () => {
          whole.set(k, (whole.get(k) ?? 0) + 1);
          onRead(k);
          return read();
        };
        return new Proxy(obj, {
          get(o, p) {
            const v = (o as any)[p];
            if (p === "arrayBuffer" || p === "text" || p === "json" || p === "bytes") return count(v.bind(o));
            return typeof v === "function" ? v.bind(o) : v;
          },
        });
      };
    },
  });
  return { bucket: wrapped, whole };
}

describe("stored bytes and the memory gate", () => {
  const auth = { Authorization: `Bearer ${TOKEN}` };

  it("an original checked at push, asked for as it is, is streamed to every client, never read whole; so is a large stored variant", async () => {
    const stem = `${uniquePrefix()}/big`;
    const original = await encode("jpg", noise(1600, 1200), { quality: 95, speed: 1 });
    expect(original.byteLength).toBeGreaterThan(1 << 20);
    expect((await call(`/_api/objects/${stem}.jpg`, { method: "PUT", body: original, headers: auth })).res.status).toBe(201);
    expect((await call(`/_api/objects/${stem}_1600_1200.jpg`, { method: "PUT", body: original, headers: auth })).res.status).toBe(201);
    const { bucket, whole } = countingReads(env.IMAGES);
    for (const path of [`/${stem}.jpg?caplist=jpg`, `/${stem}_1600_1200.jpg?caplist=jpg`]) {
      const results = await Promise.all(Array.from({ length: 10 }, () => call(path, {}, { IMAGES: bucket })));
      for (const r of results) {
        expect(r.res.status).toBe(200);
        expect(r.image).toEqual({ format: "jpg", width: 1600, height: 1200 });
        expect(bytesEqual(r.body, original)).toBe(true);
      }
    }
    expect(Object.fromEntries(whole)).toEqual({});
  });

  it("originals read before their job is priced stay within the reads' allowance: with none left, nothing is read and the answer is a 503", async () => {
    const stem = `${uniquePrefix()}/held`;
    const original = await encode("jpg", noise(1600, 1200), { quality: 95, speed: 1 });
    await put(`${stem}.jpg`, original);
    drainIdle();
    const vars = { MEMORY_BUDGET_MB: "48", MEMORY_RELEASE_MS: "500" };
    const gate = isolateGate(48 * MiB, 500);
    // Another request reading an original as large as the whole allowance (a third of the budget).
    const other = await gate.reserveRead(16 * MiB, 0);
    const { bucket, whole } = countingReads(env.IMAGES);
    const refused = await call(`/${stem}_100_0.jpg?caplist=jpg`, {}, { ...vars, ADMISSION_WAIT_MS: "300", IMAGES: bucket });
    expect(refused.res.status).toBe(503);
    expect(refused.res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(whole.get(`${stem}.jpg`)).toBeUndefined();
    other.release();
    let reading = 0;
    const counted = countingReads(env.IMAGES, (k) => k === `${stem}.jpg` && (reading = gate.readingBytes));
    const served = await call(`/${stem}_100_0.jpg?caplist=jpg`, {}, { ...vars, ADMISSION_WAIT_MS: "5000", IMAGES: counted.bucket });
    expect([served.res.status, served.res.headers.get("X-Image-Tried")]).toEqual([200, "jpg=transcode"]);
    expect(served.image).toEqual({ format: "jpg", width: 100, height: 75 });
    expect(counted.whole.get(`${stem}.jpg`)).toBe(1);
    // When the body was read, its bytes were counted in the reads' allowance; once the job was priced, no longer.
    expect(reading).toBeGreaterThanOrEqual(original.byteLength);
    expect(gate.readingBytes).toBe(0);
  });

  it("a job waiting for room lets its original go and reads it again once admitted", async () => {
    const stem = `${uniquePrefix()}/waits`;
    const original = await encode("jpg", noise(1600, 1200), { quality: 95, speed: 1 });
    await put(`${stem}.jpg`, original);
    drainIdle();
    const gate = isolateGate(48 * MiB, 500);
    const hog = gate.ticket();
    await hog.ensure(40 * MiB, 0);
    const { bucket, whole } = countingReads(env.IMAGES, (k) => {
      // The first read fits beside the hog, the job does not: once it has let go, room comes.
      if (k === `${stem}.jpg` && whole.get(k) === 1) setTimeout(() => hog.release(), 200);
    });
    const served = await call(`/${stem}_100_0.jpg?caplist=jpg`, {}, { MEMORY_BUDGET_MB: "48", MEMORY_RELEASE_MS: "500", ADMISSION_WAIT_MS: "5000", IMAGES: bucket });
    expect([served.res.status, served.res.headers.get("X-Image-Tried")]).toEqual([200, "jpg=transcode"]);
    expect(served.image).toEqual({ format: "jpg", width: 100, height: 75 });
    expect(whole.get(`${stem}.jpg`)).toBe(2);
  });

  it("a request waits for room once, not once per candidate", async () => {
    const stem = `${uniquePrefix()}/once`;
    await put(`${stem}.jpg`, await encode("jpg", noise(1600, 1200), { quality: 95, speed: 1 }));
    drainIdle();
    const gate = isolateGate(48 * MiB, 500);
    const hog = gate.ticket();
    // Room for reading the original (4 MB), none for any candidate's job.
    await hog.ensure(40 * MiB, 0);
    try {
      const { res } = await call(`/${stem}_100_0.jpg?caplist=avif,webp,jpg`, {}, { MEMORY_BUDGET_MB: "48", MEMORY_RELEASE_MS: "500", ADMISSION_WAIT_MS: "600" });
      expect(res.status).toBe(503);
      expect(res.headers.get("X-Image-Tried")).toBe("avif=admission-timeout,webp=admission-timeout,jpg=admission-timeout");
      // Server-Timing's `wait`: the worker's own count of the time spent waiting for room.
      const waited = [...(res.headers.get("Server-Timing") ?? "").matchAll(/wait;dur=([\d.]+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
      expect(waited).toBeGreaterThanOrEqual(500);
      expect(waited).toBeLessThan(1000);
    } finally {
      hog.release();
    }
  });
});
