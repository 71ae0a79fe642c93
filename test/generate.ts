/**
 * Images the suite generates in Node with sharp (libvips), so that a bare clone needs no corpus:
 * camera-size JPEGs, EXIF orientation 1-8, and a header-only bomb. The content is a real photo
 * (`samples/parrots.png`), so encoders and resamplers see real detail, not flat colour.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import sharp from "sharp";

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
  out.photo24mpProgressive = await sharp(parrots).resize(6000, 4000, { fit: "fill" }).jpeg({ quality: 88, progressive: true }).toBuffer();
  out.photo48mpBaseline = await sharp(parrots).resize(8000, 6000, { fit: "fill" }).jpeg({ quality: 85 }).toBuffer();
  // Decoding it would need 1.12 GB of RGBA: only its header may ever be read.
  out.giantJpeg = withSofSize(await sharp(parrots).resize(64, 64).greyscale().jpeg().toBuffer(), 20000, 14000);
  const landscape = await sharp(parrots).resize(600, 400).png().toBuffer();
  const portrait = await sharp(parrots).extract({ left: 200, top: 0, width: 340, height: 510 }).resize(400, 600).png().toBuffer();
  for (const [name, upright] of [["landscape", landscape], ["portrait", portrait]] as const) {
    for (let n = 1; n <= 8; n++) {
      out[`${name}${n}`] = await sharp(await storedFor(upright, n)).jpeg({ quality: 92 }).withMetadata({ orientation: n }).toBuffer();
    }
  }
  return out;
}
