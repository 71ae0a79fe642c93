/**
 * Colour management: Display P3 sources (JPEG APP2, PNG iCCP, WebP ICCP; an iPhone's photos are
 * P3) come out as the sRGB that sharp's colour-managed decode of the same file gives (generated
 * in test/generate.ts), compared pixel by pixel; a P3 file decoded as if it were sRGB is far off.
 */
import { describe, expect, it } from "vitest";
import { isobmffColour, jpegColour } from "../src/formats/colour-tag";
import { colourConversion, inkConversion } from "../src/produce/colour";
import { decode } from "../src/produce/codec-session";
import { call, colourDeltas, fixture, put, uniquePrefix } from "./helpers";

describe("colour management", () => {
  it.each([
    ["p3Jpeg", "jpg"],
    ["p3Webp", "webp"],
  ])("%s: a Display P3 original is served in sRGB, as a colour-managed decoder shows it", async (name, ext) => {
    const stem = `${uniquePrefix()}/${name}`;
    await put(`${stem}.${ext}`, fixture(name));
    const got = await call(`/${stem}.${ext}?caplist=png`);
    expect(got.res.status).toBe(200);
    const served = await decode("png", got.body);
    const reference = await decode("png", fixture(`${name}Srgb`));
    const managed = colourDeltas(served, reference);
    const unmanaged = colourDeltas(await decode(ext === "jpg" ? "jpg" : "webp", fixture(name)), reference);
    // Measured: 0.05 against 12.8 unmanaged (the decoders are the same libjpeg-turbo and libwebp).
    expect(managed.saturated, JSON.stringify({ managed, unmanaged })).toBeLessThan(0.5);
    expect(unmanaged.saturated).toBeGreaterThan(6);
  });

  it("a CMYK JPEG is converted through its profile (a 4-D table), not by the plain formula", async () => {
    const stem = `${uniquePrefix()}/cmyk`;
    await put(`${stem}.jpg`, fixture("cmykJpeg"));
    const got = await call(`/${stem}.jpg?caplist=png`);
    expect(got.res.status).toBe(200);
    const served = await decode("png", got.body);
    const reference = await decode("png", fixture("cmykJpegSrgb"));
    const managed = colourDeltas(served, reference);
    // Measured 0.4 mean, 0.6 saturated. Our decoder without the profile (the plain formula every
    // CMYK file got before): 16.7 and 11.5.
    const unmanaged = colourDeltas(await decode("jpg", fixture("cmykJpeg")), reference);
    expect(managed.all, JSON.stringify({ managed, unmanaged })).toBeLessThan(3);
    expect(managed.saturated, JSON.stringify({ managed, unmanaged })).toBeLessThan(5);
    expect(unmanaged.saturated).toBeGreaterThan(managed.saturated + 5);
  });

  it("a P3 PNG (iCCP, deflated) is converted too, resized or not", async () => {
    const stem = `${uniquePrefix()}/p3png`;
    await put(`${stem}.png`, fixture("p3Png"));
    const got = await call(`/${stem}.png?caplist=webp&q=100`);
    const served = await decode("webp", got.body);
    const reference = await decode("png", fixture("p3PngSrgb"));
    const managed = colourDeltas(served, reference);
    const unmanaged = colourDeltas(await decode("png", fixture("p3Png")), reference);
    // Through WebP at q100 (a PNG of the same size would be the original itself): 1.8 against 13.1.
    expect(managed.saturated, JSON.stringify({ managed, unmanaged })).toBeLessThan(3);
    expect(unmanaged.saturated).toBeGreaterThan(6);
  });

  it("an iPhone HEIC (Display P3, colr prof) is served in sRGB, as libheif's decode with its profile applied", async () => {
    const stem = `${uniquePrefix()}/pug`;
    await put(`${stem}.heic`, fixture("pug"));
    const got = await call(`/${stem}_600_0.heic?caplist=png`);
    expect(got.res.status).toBe(200);
    const served = await decode("png", got.body);
    const reference = await decode("png", fixture("pug600Srgb"));
    const managed = colourDeltas(served, reference);
    const unmanaged = colourDeltas(await decode("png", fixture("pug600Unmanaged")), reference);
    // The bound: mean |delta| 3, saturated 5 (resampling differs a little from sharp's).
    expect(managed.all, JSON.stringify({ managed, unmanaged })).toBeLessThan(3);
    expect(managed.saturated, JSON.stringify({ managed, unmanaged })).toBeLessThan(5);
    expect(unmanaged.saturated).toBeGreaterThan(managed.saturated + 3);
  });

  it("reads an iPhone HEIC's profile (colr prof: Display P3) and leaves sRGB and broken profiles alone", async () => {
    const pug = new Uint8Array(fixture("pug"));
    const tag = isobmffColour(pug);
    expect(tag && "icc" in tag && tag.icc.length).toBeGreaterThan(100);
    expect(await colourConversion(tag)).not.toBeNull();
    // sRGB by code points, or by nothing: nothing to do.
    expect(await colourConversion({ nclx: { primaries: 1, transfer: 13 } })).toBeNull();
    expect(await colourConversion({ nclx: { primaries: 2, transfer: 2 } })).toBeNull();
    expect(await colourConversion({ nclx: { primaries: 12, transfer: 13 } })).not.toBeNull();
    // A truncated or garbage profile: served unconverted, never an error.
    const p3 = jpegColour(new Uint8Array(fixture("p3Jpeg")));
    expect(p3 && "icc" in p3).toBe(true);
    const icc = (p3 as { icc: Uint8Array }).icc;
    expect(await colourConversion({ icc: icc.subarray(0, 200) })).toBeNull();
    expect(await colourConversion({ icc: new Uint8Array(400).fill(7) })).toBeNull();
    expect(await colourConversion({ iccDeflated: new Uint8Array([1, 2, 3]) })).toBeNull();
    // A "profile" that inflates to 64 MiB of zeros (a zlib bomb in a PNG's iCCP): no profile
    // (produce/colour stops reading a chunk past 4 MiB).
    const zeros = new Blob([new Uint8Array(64 << 20)]).stream().pipeThrough(new CompressionStream("deflate"));
    const bomb = new Uint8Array(await new Response(zeros).arrayBuffer());
    expect(bomb.byteLength).toBeLessThan(1 << 20);
    expect(await colourConversion({ iccDeflated: bomb })).toBeNull();
    expect(await inkConversion({ iccDeflated: bomb })).toBeNull();
    // A served file whose profile's tag table is garbage: served, unconverted.
    const stem = `${uniquePrefix()}/broken`;
    const bytes = new Uint8Array(fixture("p3Jpeg"));
    const at = new TextDecoder("latin1").decode(bytes).indexOf("ICC_PROFILE");
    expect(at).toBeGreaterThan(0);
    // The profile starts 14 bytes in (name, NUL, sequence, count); its tag table at 128.
    bytes.fill(0xee, at + 14 + 128, at + 14 + 192);
    await put(`${stem}.jpg`, bytes.buffer);
    expect((await call(`/${stem}_100_0.jpg?caplist=webp`)).image).toEqual({ format: "webp", width: 100, height: 67 });
  });
});
