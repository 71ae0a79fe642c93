/**
 * Orientation and alpha: a photo stored turned with EXIF orientation 1-8 (landscape and
 * portrait, generated in test/generate.ts), Pillow's hopper WebPs and link-u's kimono AVIFs
 * (irot/imir), each compared pixel by pixel with the upright reference after the worker.
 */
import { describe, expect, it } from "vitest";
import { decode, type Pixels } from "../src/produce/codec-session";
import { call, encodeTo, fixture, put, uniquePrefix } from "./helpers";

/** Mean absolute difference per channel (RGB) between two same-sized images. */
function meanDiff(a: Pixels, b: Pixels): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    sum += Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]);
  }
  return sum / ((a.data.length / 4) * 3);
}

async function served(name: string, ext: string, path: string): Promise<Pixels> {
  const stem = `${uniquePrefix()}/${name}`;
  await put(`${stem}.${ext}`, fixture(name));
  const { res, body } = await call(`/${stem}${path}`);
  expect(res.status, name).toBe(200);
  return decode("png", body);
}

describe("EXIF orientation 1-8", () => {
  it.each(["landscape", "portrait"])("%s: every orientation comes out upright and alike", async (kind) => {
    const size = kind === "landscape" ? [300, 200] : [300, 450];
    const upright = await served(`${kind}1`, "jpg", "_300_0.jpg?caplist=png");
    expect([upright.width, upright.height]).toEqual(size);
    for (let n = 2; n <= 8; n++) {
      const img = await served(`${kind}${n}`, "jpg", "_300_0.jpg?caplist=png");
      expect([img.width, img.height], `${kind}${n}`).toEqual(size);
      // A wrong transform differs by ~60+ on these pictures; a right one only by JPEG noise.
      expect(meanDiff(img, upright), `${kind}${n}`).toBeLessThan(8);
    }
  });

  it("applies orientation before a centred crop", async () => {
    const a = await served("landscape1", "jpg", "_200_200.jpg?caplist=png");
    const b = await served("landscape6", "jpg", "_200_200.jpg?caplist=png");
    expect([b.width, b.height]).toEqual([200, 200]);
    expect(meanDiff(a, b)).toBeLessThan(8);
  });
});

describe("EXIF orientation in WebP (EXIF chunk)", () => {
  it("every orientation of Pillow's hopper WebPs comes out like hopper.png", async () => {
    const upright = await served("hopperPng", "png", ".png?caplist=png");
    for (let n = 2; n <= 8; n++) {
      const img = await served(`hopperWebp${n}`, "webp", ".webp?caplist=png");
      expect([img.width, img.height]).toEqual([128, 128]);
      expect(meanDiff(img, upright), `hopper_orientation_${n}.webp`).toBeLessThan(12);
      // The stored pixels really are turned: without the EXIF chunk applied they differ a lot.
      expect(meanDiff(await decode("webp", fixture(`hopperWebp${n}`)), upright), `raw ${n}`).toBeGreaterThan(20);
    }
  });
});

describe("AVIF irot / imir (ignored by @jsquash/avif, applied here)", () => {
  it.each(["kimonoAvif", "kimonoRotate90", "kimonoRotate270", "kimonoMirrorH", "kimonoMirrorV", "kimonoMirrorVRotate270"])(
    "%s matches the upright kimono.jpg",
    async (name) => {
      const reference = await served("kimonoJpeg", "jpg", "_361_0.jpg?caplist=png");
      const img = await served(name, "avif", "_361_0.avif?caplist=png");
      expect([img.width, img.height]).toEqual([361, 512]);
      expect(meanDiff(img, reference)).toBeLessThan(10);
    },
  );
});

describe("alpha", () => {
  /** Left half fully transparent blue, right half opaque green. */
  async function halfTransparent(): Promise<string> {
    const w = 64, h = 32;
    const data = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(x < w / 2 ? [0, 0, 255, 0] : [0, 200, 0, 255], (y * w + x) * 4);
    const stem = `${uniquePrefix()}/logo`;
    await put(`${stem}.png`, await encodeTo("png", { data, width: w, height: h }));
    return stem;
  }

  it("prefers any alpha-capable candidate over flattening into JPEG", async () => {
    const stem = await halfTransparent();
    const { res, image, body } = await call(`/${stem}.png?caplist=avif,jpg,png`, {}, { ON_DEMAND_FORMATS: "webp,jpg,png", WRITE_BACK_FORMATS: "" });
    expect(res.headers.get("X-Image-Tried")).toBe("avif=miss,png=r2");
    expect(image).toEqual({ format: "png", width: 64, height: 32 });
    expect((await decode("png", body)).data[3]).toBe(0);
    const webp = await call(`/${stem}.png?caplist=jpg,webp`);
    expect(webp.res.headers.get("X-Image-Tried")).toBe("webp=transcode");
  });

  it("flattens onto the configured background only when JPEG is all that is left", async () => {
    const stem = await halfTransparent();
    const white = await call(`/${stem}_32_16.png?caplist=jpg`);
    expect(white.image).toEqual({ format: "jpg", width: 32, height: 16 });
    const px = await decode("jpg", white.body);
    expect([...px.data.slice(0, 3)].every((v) => v > 240)).toBe(true);
    const red = await call(`/${stem}_32_16.png?caplist=webp,jpg`, {}, { FLATTEN_BACKGROUND: "#ff0000", ON_DEMAND_FORMATS: "jpg", WRITE_BACK_FORMATS: "" });
    expect(red.res.headers.get("X-Image-Tried")).toBe("webp=miss,jpg=transcode");
    const r = await decode("jpg", red.body);
    expect(r.data[0]).toBeGreaterThan(230);
    expect(r.data[1]).toBeLessThan(30);
    // The opaque half is untouched green.
    const right = (16 * 8 + 28) * 4;
    expect(r.data[right + 1]).toBeGreaterThan(170);
  });

  it("does not hold back JPEG for a PNG whose alpha channel is all opaque", async () => {
    const w = 16, h = 16;
    const data = new Uint8ClampedArray(w * h * 4).fill(255);
    const stem = `${uniquePrefix()}/opaque`;
    await put(`${stem}.png`, await encodeTo("png", { data, width: w, height: h }));
    const { res } = await call(`/${stem}.png?caplist=jpg,png`);
    expect(res.headers.get("X-Image-Tried")).toBe("jpg=transcode");
  });
});
