import { describe, expect, it } from "vitest";
import { AppError } from "../src/errors";
import { planResize } from "../src/produce/geometry";
import { cacheKeyUrl, parseImageKey, variantKey } from "../src/variants/key";

const parse = (k: string) => parseImageKey(k, 4096);
const status = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof AppError ? `${e.status} ${e.code}` : "other";
  }
  return "ok";
};

describe("image keys", () => {
  it("splits stem, size and format", () => {
    expect(parse("covers/a1.jpg")).toEqual({ key: "covers/a1.jpg", stem: "covers/a1", size: null, format: "jpg", extension: "jpg" });
    expect(parse("covers/a1_666_666.avif")).toMatchObject({ stem: "covers/a1", size: { width: 666, height: 666 }, format: "avif" });
    expect(parse("a_b_1_2.JPEG")).toMatchObject({ stem: "a_b", size: { width: 1, height: 2 }, format: "jpg", extension: "JPEG" });
    expect(parse("x/a1_300_0.heif")).toMatchObject({ size: { width: 300, height: 0 }, format: "heic" });
    // A bare `_W_H` file name has no stem before it: it is a name, not a size.
    expect(parse("x/_300_200.png")).toMatchObject({ stem: "x/_300_200", size: null });
  });

  it("refuses sizes that are zero on both sides or above the maximum", () => {
    expect(status(() => parse("a_0_0.jpg"))).toBe("400 bad_size");
    expect(status(() => parse("a_4097_10.jpg"))).toBe("400 bad_size");
    expect(status(() => parse("a_4096_4096.jpg"))).toBe("ok");
  });

  it("refuses keys that are not image names or could escape their prefix", () => {
    expect(status(() => parse("a/b.bmp"))).toBe("400 bad_extension");
    expect(status(() => parse("a/b"))).toBe("400 bad_key");
    expect(status(() => parse("a/.jpg"))).toBe("400 bad_key");
    expect(status(() => parse("a/../b.jpg"))).toBe("400 bad_key");
    expect(status(() => parse("a//b.jpg"))).toBe("400 bad_key");
    expect(status(() => parse("a\\b.jpg"))).toBe("400 bad_key");
    expect(status(() => parse("a\u0007b.jpg"))).toBe("400 bad_key");
    expect(status(() => parse(`${"x".repeat(1021)}.jpg`))).toBe("400 bad_key");
  });

  it("names variants with the canonical extension and caches by negotiated format only", () => {
    expect(variantKey("covers/a1", { width: 405, height: 540 }, "jpg")).toBe("covers/a1_405_540.jpg");
    expect(variantKey("covers/a1", null, "heic")).toBe("covers/a1.heic");
    expect(cacheKeyUrl("https://x", "g1", "c/a b", null, "webp")).toBe("https://x/_variants/g1/c/a%20b.webp");
  });
});

describe("resize plans", () => {
  it("covers and centre-crops when both sides are given", () => {
    expect(planResize(640, 480, { width: 320, height: 320 })).toEqual({
      crop: { x: 80, y: 0, width: 480, height: 480 },
      width: 320,
      height: 320,
    });
    expect(planResize(480, 640, { width: 400, height: 100 })).toEqual({
      crop: { x: 0, y: 260, width: 480, height: 120 },
      width: 400,
      height: 100,
    });
  });

  it("keeps the aspect ratio when one side is 0", () => {
    expect(planResize(640, 480, { width: 320, height: 0 })).toMatchObject({ width: 320, height: 240 });
    expect(planResize(640, 480, { width: 0, height: 120 })).toMatchObject({ width: 160, height: 120 });
  });

  it("never upscales, keeping the asked aspect ratio", () => {
    expect(planResize(640, 480, { width: 2000, height: 2000 })).toEqual({
      crop: { x: 80, y: 0, width: 480, height: 480 },
      width: 480,
      height: 480,
    });
    expect(planResize(640, 480, { width: 1000, height: 0 })).toMatchObject({ width: 640, height: 480 });
    expect(planResize(640, 480, null)).toMatchObject({ width: 640, height: 480 });
  });
});
