import { describe, expect, it } from "vitest";
import { HeaderError, readHeader } from "../src/headers";
import { encodeTo, fixture, gradient } from "./helpers";

const header = (b: ArrayBuffer) => readHeader(new Uint8Array(b));

describe("header parsing without decoding", () => {
  it.each(["avif", "webp", "jpg", "png"] as const)("reads %s written by our own encoder", async (format) => {
    const bytes = await encodeTo(format, gradient(123, 45));
    expect(header(bytes)).toMatchObject({ format, width: 123, height: 45 });
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
