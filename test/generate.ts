/**
 * Images the suite generates in Node with sharp (libvips), so that a bare clone needs no corpus:
 * camera-size JPEGs, EXIF orientation 1-8, and a header-only bomb. The content is a real photo
 * (`samples/parrots.png`), so encoders and resamplers see real detail, not flat colour.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { pngChunk } from "../scripts/lib/png-chunk.mjs";

/**
 * A non-interlaced PNG written by hand, for layouts sharp does not write (grey at 1/2/4 bits,
 * tRNS colour keys) and for lies: `rows` are unfiltered scanlines, filtered here with types
 * 0-4 in turn (PNG spec 9.2) so the decoder meets every filter; `declaredHeight` may exceed them.
 */
function craftPng(o: { width: number; declaredHeight: number; depth: number; colourType: number; rows: Buffer[]; chunks?: [string, Buffer][] }): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(o.width, 0);
  ihdr.writeUInt32BE(o.declaredHeight, 4);
  ihdr.set([o.depth, o.colourType, 0, 0, 0], 8);
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[o.colourType]!;
  const bpp = Math.max(1, (channels * o.depth) >> 3);
  const filtered: Buffer[] = [];
  let prev: Buffer = Buffer.alloc(o.rows[0].length);
  o.rows.forEach((row, y) => {
    const type = y % 5;
    const f = Buffer.alloc(row.length + 1);
    f[0] = type;
    for (let i = 0; i < row.length; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = prev[i];
      const c = i >= bpp ? prev[i - bpp] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][type];
      f[i + 1] = (row[i] - pred) & 255;
    }
    filtered.push(f);
    prev = row;
  });
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    ...(o.chunks ?? []).map(([t, d]) => pngChunk(t, d)),
    pngChunk("IDAT", deflateSync(Buffer.concat(filtered), { level: 9 })),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Scanlines of `depth`-bit samples, `perRow` per row, from a function of (x, y). */
function packed(width: number, height: number, depth: number, perPixel: number, sample: (x: number, y: number, c: number) => number): Buffer[] {
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(Math.ceil((width * perPixel * depth) / 8));
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < perPixel; c++) {
        const v = sample(x, y, c);
        const bit = (x * perPixel + c) * depth;
        if (depth === 16) row.writeUInt16BE(v, bit >> 3);
        else if (depth === 8) row[bit >> 3] = v;
        else row[bit >> 3] |= v << (8 - depth - (bit & 7));
      }
    }
    rows.push(row);
  }
  return rows;
}

/**
 * Stored pixels for EXIF orientation n: the inverse of the transform a viewer applies
 * (EXIF 2.32, tag 0x0112): 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 CW,
 * 7 transverse, 8 rotate 270 CW. 5 and 7 are their own inverses; 6 and 8 invert each other.
 */
async function storedFor(upright: Buffer, n: number): Promise<Buffer> {
  const raw = (img: sharp.Sharp) => img.png().toBuffer();
  switch (n) {
    case 1: return upright;
    case 2: return raw(sharp(upright).flop());
    case 3: return raw(sharp(upright).rotate(180));
    case 4: return raw(sharp(upright).flip());
    case 5: return raw(sharp(await raw(sharp(upright).rotate(90))).flop());
    case 6: return raw(sharp(upright).rotate(270));
    case 7: return raw(sharp(await raw(sharp(upright).rotate(90))).flip());
    case 8: return raw(sharp(upright).rotate(90));
    default: throw new Error(`orientation ${n}`);
  }
}

/** Width and height fields of a JPEG's first SOFn segment set to the given values (ITU T.81 B.2.2). */
function withSofSize(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; ) {
    const marker = out[i + 1];
    const len = out.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
    i += 2 + len;
  }
  throw new Error("no SOF segment");
}

export async function generated(root: string): Promise<Record<string, Buffer>> {
  const parrots = readFileSync(resolve(root, "samples/parrots.png"));
  const out: Record<string, Buffer> = {};
  // A 12.2 MP progressive camera-like JPEG, portrait like a phone photo.
  out.photo12mp = await sharp(parrots).rotate(90).resize(3024, 4032, { fit: "fill" }).jpeg({ quality: 90, progressive: true }).toBuffer();
  // A 24 MP progressive camera-size JPEG (6000x4000, like rachel-hisko) and a 48 MP baseline
  // one (8000x6000): the shrink-on-load memory table of the codec layer.
  // A GIF whose one 4000x3000 frame (red left half, blue right) is far larger than the 64x64
  // logical screen its header was patched to (issue 30: giflib allocated the whole frame).
  const halves = Buffer.alloc(4000 * 3000 * 3);
  for (let i = 0; i < 4000 * 3000; i++) halves[i * 3 + (i % 4000 < 2000 ? 0 : 2)] = 255;
  out.gifFrameOverScreen = await sharp(halves, { raw: { width: 4000, height: 3000, channels: 3 } }).gif().toBuffer();
  out.gifFrameOverScreen.writeUInt16LE(64, 6);
  out.gifFrameOverScreen.writeUInt16LE(64, 8);
  // A small progressive JPEG (libjpeg's default progression): scan-count tests copy its scans.
  out.progressiveSmall = await sharp(parrots).resize(96, 64).jpeg({ quality: 80, progressive: true }).toBuffer();
  out.photo24mpProgressive = await sharp(parrots).resize(6000, 4000, { fit: "fill" }).jpeg({ quality: 88, progressive: true }).toBuffer();
  // Cameras and phones write baseline JPEG: decoded by rows without keeping coefficients.
  out.photo24mpBaseline = await sharp(parrots).resize(6000, 4000, { fit: "fill" }).jpeg({ quality: 90 }).toBuffer();
  out.photo48mpBaseline = await sharp(parrots).resize(8000, 6000, { fit: "fill" }).jpeg({ quality: 85 }).toBuffer();
  // A 12 MP lossy WebP photo and a lossless one with alpha: libwebp's scaled decode.
  out.photo12mpWebp = await sharp(parrots).resize(4000, 3000, { fit: "fill" }).webp({ quality: 80 }).toBuffer();
  out.losslessAlphaWebp = await sharp(parrots).resize(301, 201).ensureAlpha(0.6).webp({ lossless: true }).toBuffer();
  // Display P3 photos (sharp converts the sRGB parrots into P3 and embeds the profile: APP2 in
  // JPEG, iCCP in PNG, ICCP in WebP; an iPhone's photos are P3), each with sharp's own
  // colour-managed sRGB decode as the reference, and ProPhoto (a wider gamut, another curve).
  const p3 = sharp(parrots).resize(384, 256);
  for (const [name, img] of [
    ["p3Jpeg", p3.clone().withIccProfile("p3").jpeg({ quality: 95 })],
    ["p3Png", p3.clone().withIccProfile("p3").png()],
    ["p3Webp", p3.clone().withIccProfile("p3").webp({ quality: 95 })],
    // CMYK with its (lut16, 9-point grid) profile embedded, as print workflows write it.
    ["cmykJpeg", p3.clone().withIccProfile("cmyk").jpeg({ quality: 95 })],
  ] as const) {
    out[name] = await img.toBuffer();
    out[`${name}Srgb`] = await sharp(out[name]).png().toBuffer();
  }
  // The iPhone HEIC sample is Display P3 (its colr prof): libheif's own decode (its transforms
  // applied, no colour management) at 600 wide, then the same pixels tagged with the file's
  // profile (an iCCP chunk) and converted to sRGB by sharp: the colour-managed reference.
  const pug = readFileSync(resolve(root, "samples/pug.heic"));
  const heif = await decodeHeif(pug);
  const raw600 = await sharp(heif.data, { raw: { width: heif.width, height: heif.height, channels: 4 } }).resize(600).removeAlpha().png().toBuffer();
  const colr = pug.indexOf("colrprof", 0, "latin1");
  const icc = pug.subarray(colr + 8, colr - 4 + pug.readUInt32BE(colr - 4));
  const tagged = Buffer.concat([raw600.subarray(0, 33), pngChunk("iCCP", Buffer.concat([Buffer.from("P3\0\0", "latin1"), deflateSync(icc)])), raw600.subarray(33)]);
  out.pug600Srgb = await sharp(tagged).png().toBuffer();
  out.pug600Unmanaged = raw600;
  // Decoding it would need 1.12 GB of RGBA: only its header may ever be read.
  out.giantJpeg = withSofSize(await sharp(parrots).resize(64, 64).greyscale().jpeg().toBuffer(), 20000, 14000);
  // PNG in every colour type and bit depth sharp writes, plain and Adam7-interlaced, at odd
  // sizes so interlace passes are ragged (and 1x1 / 3x2, where some passes are empty).
  const [W, H] = [97, 61];
  const small = sharp(parrots).resize(W, H).removeAlpha();
  const rgb = await small.clone().raw().toBuffer();
  const grey = await small.clone().toColourspace("b-w").raw().toBuffer();
  // Alpha from fully transparent to opaque across the image, both ends exactly.
  const alphaAt = (i: number) => Math.round((255 * (i % W)) / (W - 1));
  const interleave = (src: Buffer, ch: number) => {
    const out = Buffer.alloc(W * H * (ch + 1));
    for (let i = 0; i < W * H; i++) {
      src.copy(out, i * (ch + 1), i * ch, i * ch + ch);
      out[i * (ch + 1) + ch] = alphaAt(i);
    }
    return out;
  };
  const rgba = () => sharp(interleave(rgb, 3), { raw: { width: W, height: H, channels: 4 } });
  const greyImg = () => sharp(grey, { raw: { width: W, height: H, channels: 1 } }).toColourspace("b-w");
  const pngs: Record<string, () => Promise<Buffer>> = {
    pngRgb8: () => small.clone().png().toBuffer(),
    pngRgb8Interlaced: () => small.clone().png({ progressive: true }).toBuffer(),
    pngRgba8: () => rgba().png().toBuffer(),
    pngRgba16Interlaced: () => rgba().toColourspace("rgb16").png({ progressive: true }).toBuffer(),
    pngRgb16: () => small.clone().toColourspace("rgb16").png().toBuffer(),
    pngGrey8: () => greyImg().png().toBuffer(),
    pngGrey16: () => greyImg().toColourspace("grey16").png().toBuffer(),
    pngGreyAlpha8: () => sharp(interleave(grey, 1), { raw: { width: W, height: H, channels: 2 } }).toColourspace("b-w").png().toBuffer(),
    pngPalette1: () => small.clone().png({ palette: true, colours: 2 }).toBuffer(),
    pngPalette2: () => small.clone().png({ palette: true, colours: 4 }).toBuffer(),
    pngPalette4Interlaced: () => small.clone().png({ palette: true, colours: 16, progressive: true }).toBuffer(),
    pngPaletteAlpha8: () => rgba().png({ palette: true, colours: 200 }).toBuffer(),
    png1x1Interlaced: () => sharp(parrots).resize(1, 1).png({ progressive: true }).toBuffer(),
    png3x2Interlaced: () => sharp(parrots).resize(3, 2).png({ progressive: true }).toBuffer(),
  };
  for (const [name, make] of Object.entries(pngs)) out[name] = await make();
  for (const depth of [1, 2, 4]) {
    const max = (1 << depth) - 1;
    // A colour key on grey (tRNS, spec 11.3.2.1): samples equal to 1 become transparent.
    out[`pngGrey${depth}Keyed`] = craftPng({ width: 37, declaredHeight: 23, depth, colourType: 0, rows: packed(37, 23, depth, 1, (x, y) => (x * 3 + y) % (max + 1)), chunks: [["tRNS", Buffer.from([0, 1])]] });
  }
  out.pngRgb16Keyed = craftPng({ width: 29, declaredHeight: 17, depth: 16, colourType: 2, rows: packed(29, 17, 16, 3, (x, y, c) => ((x + y) % 4) * 0x1111 * (c + 1)), chunks: [["tRNS", Buffer.from([0x11, 0x11, 0x22, 0x22, 0x33, 0x33])]] });
  // 3000x3000 declared, 10 rows present: a whole-image decoder allocates 36 MB to fail.
  // A 1x1 RGBA PNG whose zlib stream runs on past its one row: 64 MiB of zeros in about 64 KB
  // (issue 30: the whole tail used to be inflated and held).
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  out.pngZlibTail = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", deflateSync(Buffer.concat([Buffer.from([0, 10, 200, 30, 255]), Buffer.alloc(64 * 2 ** 20)]), { level: 9 })),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
  out.lyingPng = craftPng({ width: 3000, declaredHeight: 3000, depth: 8, colourType: 2, rows: packed(3000, 10, 8, 3, (x, y) => (x + y) & 255) });
  const landscape = await sharp(parrots).resize(600, 400).png().toBuffer();
  const portrait = await sharp(parrots).extract({ left: 200, top: 0, width: 340, height: 510 }).resize(400, 600).png().toBuffer();
  for (const [name, upright] of [["landscape", landscape], ["portrait", portrait]] as const) {
    for (let n = 1; n <= 8; n++) {
      out[`${name}${n}`] = await sharp(await storedFor(upright, n)).jpeg({ quality: 92 }).withMetadata({ orientation: n }).toBuffer();
    }
  }
  // Above 4 MP, full-size outputs are written by row encoders that turn the rows themselves
  // (WebP's YUV picture, AVIF's grid tiles): 2400x1800 stored turned for 3, 5, 6 and 8.
  const big = await sharp(parrots).resize(2400, 1800, { fit: "fill" }).png().toBuffer();
  out.bigUpright = await sharp(big).jpeg({ quality: 92 }).toBuffer();
  for (const n of [3, 5, 6, 8]) out[`bigTurned${n}`] = await sharp(await storedFor(big, n)).jpeg({ quality: 92 }).withMetadata({ orientation: n }).toBuffer();
  // A 4.2 MP PNG with an alpha gradient (left transparent, right opaque) over colour gradients
  // (smooth, so the file stays small): WebP from rows keeps alpha.
  const rgba4mp = Buffer.alloc(2100 * 2000 * 4);
  for (let i = 0; i < 2100 * 2000; i++) {
    const [x, y] = [i % 2100, Math.floor(i / 2100)];
    rgba4mp.set([Math.round((255 * y) / 1999), Math.round((255 * x) / 2099), 128, Math.round((255 * x) / 2099)], i * 4);
  }
  out.bigAlphaPng = await sharp(rgba4mp, { raw: { width: 2100, height: 2000, channels: 4 } }).png().toBuffer();
  // Animations (codecs/animation): a window panning over the photo, as a GIF and an animated
  // WebP; a frame bomb; and libvips' composited frames of every GIF in test/fixtures/gif, the
  // reference the workerd suite compares our compositing with.
  const pan: Buffer[] = [];
  for (let i = 0; i < 6; i++) pan.push(await sharp(parrots).extract({ left: i * 20, top: i * 10, width: 160, height: 120 }).png().toBuffer());
  out.panGif = await sharp(pan, { join: { animated: true } }).gif({ loop: 3, delay: [80, 80, 80, 80, 80, 200] }).toBuffer();
  out.panWebp = await sharp(pan, { join: { animated: true } }).webp({ loop: 0, delay: [80, 80, 80, 80, 80, 200], quality: 80 }).toBuffer();
  // A larger pan cut out as a disc (transparent outside, as stickers are): a photo-like GIF
  // whose canvas shows transparent pixels, 240x180 (where an AVIF alpha track pays off).
  const disc: Buffer[] = [];
  for (let f = 0; f < 6; f++) {
    const { data } = await sharp(parrots).extract({ left: f * 20, top: f * 10, width: 240, height: 180 }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    for (let i = 0; i < 240 * 180; i++) if (Math.hypot((i % 240) - 120, Math.floor(i / 240) - 90) > 82) data[i * 4 + 3] = 0;
    disc.push(await sharp(data, { raw: { width: 240, height: 180, channels: 4 } }).png().toBuffer());
  }
  out.discGif = await sharp(disc, { join: { animated: true } }).gif({ loop: 0, delay: [80, 80, 80, 80, 80, 200] }).toBuffer();
  out.frameBombGif = frameBomb(40_000);
  const gifDir = resolve(root, "test/fixtures/gif");
  const refs: Record<string, { width: number; height: number; pages: number }> = {};
  for (const name of readdirSync(gifDir).filter((f) => f.endsWith(".gif"))) {
    const bytes = readFileSync(resolve(gifDir, name));
    out[`gif:${name}`] = bytes;
    try {
      const { data, info } = await sharp(bytes, { animated: true }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      const pages = info.pageHeight ? info.height / info.pageHeight : 1;
      out[`gifRef:${name}`] = data;
      refs[name] = { width: info.width, height: info.pageHeight ?? info.height, pages };
    } catch {
      // libvips refuses it (zero_width.gif, test_extents_transparency.gif): no reference.
    }
  }
  out.gifRefs = Buffer.from(JSON.stringify(refs));
  return out;
}

/**
 * A GIF89a of `frames` 1x1 images (the fuzzdb `uber.gif` attack: 40k frames froze Paperclip).
 * Each frame: an image descriptor (section 20) and its LZW data (min code size 2: clear,
 * index 0, end of information, packed LSB first into 0x44 0x01).
 */
function frameBomb(frames: number): Buffer {
  const head = Buffer.from([...Buffer.from("GIF89a", "latin1"), 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
  const frame = Buffer.from([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0]);
  return Buffer.concat([head, ...Array.from({ length: frames }, () => frame), Buffer.from([0x3b])]);
}

/** libheif's decode of a HEIF in Node (libheif-js's own bundle), transforms applied. */
async function decodeHeif(bytes: Buffer): Promise<{ data: Uint8ClampedArray; width: number; height: number }> {
  type Image = { get_width(): number; get_height(): number; display(t: object, done: () => void): void };
  const libheif = createRequire(import.meta.url)("libheif-js/wasm-bundle") as { HeifDecoder: new () => { decode(b: Buffer): Image[] } };
  const image = new libheif.HeifDecoder().decode(bytes)[0];
  const target = { data: new Uint8ClampedArray(image.get_width() * image.get_height() * 4), width: image.get_width(), height: image.get_height() };
  await new Promise<void>((done) => image.display(target, done));
  return target;
}
