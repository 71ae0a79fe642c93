/**
 * Test helpers that run inside workerd. They call the real Worker entry with a real execution
 * context, so `waitUntil` work (cache fills, write-back) can be awaited before asserting.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { expect, inject } from "vitest";
import worker from "../src/index";
import { decode, encode, type Pixels } from "../src/produce/codec-session";
import { drainIdle } from "../src/codecs/resident";
import type { FormatId } from "../src/formats";
import { readHeader } from "../src/headers";
import type { FixtureName } from "./fixtures";

export const ORIGIN = "https://img.example.com";

export function fixture(name: FixtureName): ArrayBuffer {
  const b64 = inject("fixtures")[name];
  if (b64 === undefined) throw new Error(`no fixture named ${name} (test/fixtures.ts)`);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

let counter = 0;
/** A fresh key prefix per test, so tests never see each other's objects or cache entries. */
export function uniquePrefix(): string {
  return `t${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** A smooth, non-uniform RGBA image: real content for the encoders, no two rows alike. */
export function gradient(width: number, height: number, alpha = 255): Pixels {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = (x * 255) / width;
      data[i + 1] = (y * 255) / height;
      data[i + 2] = ((x + y) * 127) / (width + height) + 64;
      data[i + 3] = alpha;
    }
  }
  return { data, width, height };
}

export async function encodeTo(format: FormatId, pixels: Pixels, quality = 80): Promise<ArrayBuffer> {
  return encode(format, pixels, { quality, speed: format === "avif" ? 10 : 4 });
}

export async function put(key: string, bytes: ArrayBuffer): Promise<void> {
  await env.IMAGES.put(key, bytes);
}

export interface Fetched {
  res: Response;
  body: ArrayBuffer;
  /** Format sniffed from the body's magic bytes, and its size from a real decode; null if it does not decode. */
  image: { format: FormatId; width: number; height: number } | null;
  /** Why an image body did not decode. */
  decodeError?: string;
}

/** Calls the Worker, reads the body, waits for its background work, and decodes the image. */
export async function call(path: string, init: RequestInit = {}, vars: Record<string, unknown> = {}): Promise<Fetched> {
  // A job whose peak is measured starts from fresh codec instances: the memory models are
  // fresh-instance models, and a resident instance is as large as the largest job it served
  // (the gate counts that excess itself: codecs/resident).
  if (vars.PEAK_MEMORY_HEADER === "on") drainIdle();
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${ORIGIN}${path}`, init) as never, { ...env, ...vars } as never, ctx);
  const body = await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  const isImage = res.status === 200 && body.byteLength > 0 && res.headers.get("Content-Type")?.startsWith("image/");
  if (!isImage) return { res, body, image: null };
  try {
    return { res, body, image: await decodedImage(body) };
  } catch (e) {
    return { res, body, image: null, decodeError: String(e) };
  }
}

/** Format from magic bytes; width and height from actually decoding (HEIC: from its header, no decoder). */
export async function decodedImage(body: ArrayBuffer): Promise<{ format: FormatId; width: number; height: number }> {
  const header = readHeader(new Uint8Array(body));
  if (!header) throw new Error("body is not a known image format");
  if (header.format === "heic") return { format: "heic", width: header.width, height: header.height };
  const pixels = await decode(header.format, body);
  return { format: header.format, width: pixels.width, height: pixels.height };
}

export const BROWSERS = {
  chrome: "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
  firefox: "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
  safari17:
    "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
  safari15: "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",
  curl: "*/*",
  noAvif: "image/avif;q=0,image/webp",
} as const;

export const bytesEqual = (a: ArrayBuffer, b: ArrayBuffer) => {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.every((v, i) => v === y[i]);
};

/** Polls until `done` holds (queue consumers run on their own), at most `ms`. */
export async function until<T>(what: string, fn: () => Promise<T>, done: (v: T) => boolean, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Which R2 operations of `faultyBucket` fail; each may be limited to keys a predicate picks. */
export interface Faults {
  get?: boolean | ((key: string) => boolean);
  head?: boolean | ((key: string) => boolean);
  put?: boolean | ((key: string) => boolean);
  list?: boolean;
  delete?: boolean;
}

/**
 * The real R2 binding with injected faults: the operations named in `faults` throw, as R2 does
 * when it is unavailable; everything else goes to miniflare's R2. The only stand-in the suite
 * allows: it wraps the real bucket, it does not replace it.
 */
export function faultyBucket(bucket: R2Bucket, faults: Faults): R2Bucket {
  const fails = (f: boolean | ((key: string) => boolean) | undefined, key: string) => (typeof f === "function" ? f(key) : !!f);
  const boom = (op: string) => new Error(`injected R2 fault: ${op} failed`);
  return {
    get: ((key: string, opts?: never) => (fails(faults.get, key) ? Promise.reject(boom("get")) : bucket.get(key, opts))) as R2Bucket["get"],
    head: (key: string) => (fails(faults.head, key) ? Promise.reject(boom("head")) : bucket.head(key)),
    put: ((key: string, value: never, opts?: never) => (fails(faults.put, key) ? Promise.reject(boom("put")) : bucket.put(key, value, opts))) as R2Bucket["put"],
    list: (opts?: R2ListOptions) => (faults.list ? Promise.reject(boom("list")) : bucket.list(opts)),
    delete: (keys: string | string[]) => (faults.delete ? Promise.reject(boom("delete")) : bucket.delete(keys)),
    createMultipartUpload: bucket.createMultipartUpload.bind(bucket),
    resumeMultipartUpload: bucket.resumeMultipartUpload.bind(bucket),
  };
}

/** `jpeg` with its last scan (SOS segment and entropy-coded data, up to EOI) repeated `extra` more times. */
export function withExtraScans(jpeg: ArrayBuffer, extra: number): ArrayBuffer {
  const b = new Uint8Array(jpeg);
  let lastSos = -1;
  for (let i = 2; i + 1 < b.length; i++) if (b[i] === 0xff && b[i + 1] === 0xda) lastSos = i;
  const eoi = b.length - 2;
  expect([b[eoi], b[eoi + 1]]).toEqual([0xff, 0xd9]);
  const scan = b.subarray(lastSos, eoi);
  const out = new Uint8Array(b.length + extra * scan.length);
  out.set(b.subarray(0, eoi));
  for (let k = 0; k < extra; k++) out.set(scan, eoi + k * scan.length);
  out.set([0xff, 0xd9], eoi + extra * scan.length);
  return out.buffer;
}

/** Mean |delta| per channel (RGB), over every pixel and over the saturated ones (the measure). */
export function colourDeltas(a: { data: Uint8ClampedArray; width: number; height: number }, b: { data: Uint8ClampedArray; width: number; height: number }): { all: number; saturated: number } {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`${a.width}x${a.height} against ${b.width}x${b.height}`);
  let all = 0;
  let sat = 0;
  let n = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    const d = Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]);
    all += d;
    const [r, g, bl] = [b.data[i], b.data[i + 1], b.data[i + 2]];
    if (Math.max(r, g, bl) - Math.min(r, g, bl) > 96) {
      sat += d;
      n++;
    }
  }
  return { all: all / ((a.data.length / 4) * 3), saturated: sat / (n * 3) };
}
