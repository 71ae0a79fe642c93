/**
 * Containers that lie about the size of their coded stream (issue 14.3): the AV1 sequence
 * header and the HEVC SPS are what decoders allocate from, so a file whose stream is larger
 * than its `ispe` says is refused from its header: 422 on push, `bad-source` on delivery,
 * and no decoder ever runs.
 */
import { describe, expect, it } from "vitest";
import { av1SequenceSize, hevcConfigSize } from "../src/bitstream";
import { HeaderError, readHeader } from "../src/headers";
import { call, encodeTo, fixture, gradient, put, uniquePrefix } from "./helpers";

const TOKEN = "test-token-0123456789abcdef";

/** Every `ispe` property whose size is `from` rewritten to `to` (ISO/IEC 23008-12 6.5.3). */
function patchIspe(bytes: ArrayBuffer, from: [number, number], to: [number, number]): ArrayBuffer {
  const b = new Uint8Array(bytes.slice(0));
  const v = new DataView(b.buffer);
  let patched = 0;
  for (let i = 4; i + 16 <= b.length; i++) {
    if (b[i] !== 0x69 || b[i + 1] !== 0x73 || b[i + 2] !== 0x70 || b[i + 3] !== 0x65) continue; // "ispe"
    if (v.getUint32(i + 8) !== from[0] || v.getUint32(i + 12) !== from[1]) continue;
    v.setUint32(i + 8, to[0]);
    v.setUint32(i + 12, to[1]);
    patched++;
  }
  if (!patched) throw new Error(`no ispe of ${from.join("x")}`);
  return b.buffer;
}

/** The first box of `type` anywhere in the file (a naive scan, for locating properties in tests). */
function findBox(b: Uint8Array, type: string): { body: number; end: number } {
  for (let i = 4; i + 4 <= b.length; i++) {
    if (String.fromCharCode(b[i], b[i + 1], b[i + 2], b[i + 3]) === type) {
      const size = new DataView(b.buffer, b.byteOffset).getUint32(i - 4);
      return { body: i + 4, end: i - 4 + size };
    }
  }
  throw new Error(`no ${type} box`);
}

describe("coded sizes from the bitstream", () => {
  it("AV1 sequence header and HEVC SPS give the real files' sizes", async () => {
    const avif = new Uint8Array(await encodeTo("avif", gradient(300, 200)));
    // A single-image AVIF's mdat holds the item's data: a sequence header OBU first.
    const mdat = findBox(avif, "mdat");
    expect(av1SequenceSize(avif, mdat.body, mdat.end)).toEqual({ width: 300, height: 200 });
    const rainbow = new Uint8Array(fixture("rainbowHeic"));
    const hvcC = findBox(rainbow, "hvcC");
    expect(hevcConfigSize(rainbow, hvcC.body, hvcC.end)).toEqual({ width: 456, height: 464 });
    const pug = new Uint8Array(fixture("pug"));
    const tile = findBox(pug, "hvcC");
    expect(hevcConfigSize(pug, tile.body, tile.end)).toEqual({ width: 512, height: 512 });
  });

  const liars = [
    ["AVIF whose AV1 stream is 256x256 under a 64x64 ispe", "avif", async () => patchIspe(await encodeTo("avif", gradient(256, 256)), [256, 256], [64, 64]), /av01 item 1 codes 256x256 where the container declares 64x64/],
    ["HEIC whose SPS is 456x464 under a 200x200 ispe", "heic", async () => patchIspe(fixture("rainbowHeic"), [452, 462], [200, 200]), /hvc1 item \d+ codes 456x464 where the container declares 200x200/],
    ["HEIC grid whose 512x512 tiles are declared 256x256", "heic", async () => patchIspe(fixture("arrowHeic"), [512, 512], [256, 256]), /hvc1 item \d+ codes 512x512 where the container declares 256x256/],
  ] as const;

  it.each(liars)("%s: refused from its header", async (_name, _ext, make, message) => {
    const bytes = await make();
    expect(() => readHeader(new Uint8Array(bytes))).toThrow(HeaderError);
    expect(() => readHeader(new Uint8Array(bytes))).toThrow(message);
  });

  it.each(liars)("%s: 422 on push, bad-source on delivery, no decode", async (_name, ext, make) => {
    const bytes = await make();
    const stem = `${uniquePrefix()}/liar`;
    const pushed = await call(`/_api/objects/${stem}.${ext}`, { method: "PUT", body: bytes, headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(pushed.res.status).toBe(422);
    expect(JSON.parse(new TextDecoder().decode(pushed.body)).error).toBe("bad_image");
    // Stored behind the API's back (an older version's upload): delivery refuses it too.
    await put(`${stem}.${ext}`, bytes);
    const { res } = await call(`/${stem}_50_0.jpg?caplist=webp,jpg`);
    expect(res.status).toBe(404);
    expect(res.headers.get("X-Image-Tried")).toMatch(/^webp=bad-source.*jpg=bad-source/);
    expect(res.headers.get("Server-Timing") ?? "").not.toMatch(/decode/);
  });

  it("the real files still pass", () => {
    for (const name of ["pug", "arrowHeic", "rainbowHeic", "foxAvif", "kimonoAvif", "kimonoRotate90"]) {
      expect(readHeader(new Uint8Array(fixture(name))), name).not.toBeNull();
    }
  });
});
