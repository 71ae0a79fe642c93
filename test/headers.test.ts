import { describe, expect, it } from "vitest";
import { ALL_FORMATS, formatSpec } from "../src/formats";
import { HeaderError, readHeader } from "../src/headers";
import { encodeTo, fixture, gradient } from "./helpers";

const header = (b: ArrayBuffer) => readHeader(new Uint8Array(b));

describe("header parsing without decoding", () => {
  it.each(["avif", "webp", "jpg", "png"] as const)("reads %s written by our own encoder", async (format) => {
    const bytes = await encodeTo(format, gradient(123, 45));
    expect(header(bytes)).toMatchObject({ format, width: 123, height: 45 });
  });

  it("each format module's magic bytes claim its own files and no other format's (the registry)", () => {
    const files = { jpg: fixture("cameraJpeg"), png: fixture("kodim23Png"), webp: fixture("hopperWebp6"), avif: fixture("foxAvif"), heic: fixture("pug"), gif: fixture("panGif") };
    expect(Object.keys(files).sort()).toEqual([...ALL_FORMATS].sort());
    for (const [format, bytes] of Object.entries(files)) {
      const b = new Uint8Array(bytes, 0, 64);
      expect(ALL_FORMATS.filter((id) => formatSpec(id).sniff(b)), format).toEqual([format]);
      // Each module's own probe reads it, and tags it with its id.
      expect(formatSpec(format as (typeof ALL_FORMATS)[number]).parseHeader(new Uint8Array(bytes)).format).toBe(format);
    }
  });

  it("reads real files from the corpus", () => {
    expect(header(fixture("kodim23Png"))).toMatchObject({ format: "png", width: 768, height: 512, hasAlpha: false });
    expect(header(fixture("cameraJpeg"))).toMatchObject({ format: "jpg", width: 1944, height: 2592 });
    expect(header(fixture("rainbowHeic"))).toMatchObject({ format: "heic", width: 452, height: 462, clap: { x: 0, y: 0, width: 451, height: 461 } });
    expect(header(fixture("arrowHeic"))).toMatchObject({ format: "heic", width: 4032, height: 3024, orientation: [6], bandHeight: 512 });
    expect(header(fixture("foxAvif"))).toMatchObject({ format: "avif", width: 1204, height: 800 });
    // The 20000x14000 bomb is recognised from its first bytes: nothing needs decoding.
    expect(header(fixture("giantJpeg").slice(0, 64 * 1024))).toMatchObject({ format: "jpg", width: 20000, height: 14000 });
  });

  it("sees alpha in PNG and WebP headers", async () => {
    expect(header(await encodeTo("png", gradient(8, 8, 128)))).toMatchObject({ hasAlpha: true });
    expect(header(await encodeTo("webp", gradient(8, 8, 128)))).toMatchObject({ hasAlpha: true });
  });

  it("returns null for bytes of no known format and throws on truncated headers", async () => {
    expect(header(new TextEncoder().encode("BM6....\0\0").buffer as ArrayBuffer)).toBeNull();
    const png = await encodeTo("png", gradient(8, 8));
    expect(() => header(png.slice(0, 20))).toThrow(HeaderError);
    const jpg = await encodeTo("jpg", gradient(8, 8));
    expect(() => header(jpg.slice(0, 10))).toThrow(HeaderError);
  });
});
