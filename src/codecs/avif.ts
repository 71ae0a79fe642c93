/**
 * @module codecs/avif
 * AVIF stills, coded by our libaom build (codecs/av1seq: all-intra mode, WASM SIMD) in files
 * this module writes. A still is one AV1 image, with an alpha image when any pixel is
 * translucent (libavif leaves an opaque image's alpha out too).
 *
 * Large AVIF is written as a grid of independently coded tiles (ISO/IEC 23008-12 6.6.2.3
 * `grid`, which AVIF and MIAF allow; iPhone HEIC photos are built the same way). libaom needs
 * the whole picture it codes, and its memory grows with it (24 bytes a pixel in all-intra mode,
 * 847.6 MB for 24 MP through @jsquash/avif), so a full-size photo is cut into tiles of at most
 * TILE x TILE, each coded by the same encoder instance (9.3 MiB at 512x512), and the coded
 * tiles are wrapped in one file whose primary item is the grid. Rows arrive in stored
 * orientation and tiles are cut in display orientation, each turned on the way, so the file
 * needs no irot/imir (which some decoders ignore): the pixels are upright. Only a band of one
 * tile's source rows and one tile of RGBA are held, besides the coded tiles.
 */
import type { CodecUsage, Pixels } from "./index";
import { avifSequenceStill } from "./av1dec";
import { av1SequenceInfo } from "../bitstream";
import { hasTransparency } from "./alpha";
import { av1StillCoder, type CodedAv1 } from "./av1seq";
import { ascii, box, fields, fullBox, imageMeta, NCLX_SRGB } from "./boxes";
import { storedPosition, type RowEncoder } from "./rows";

/**
 * Tile side. Measured on a 12 MP photo at q80 speed 8 (Node): 512 took 9.0 s and 16 MiB of
 * encoder memory for 1.956 MB; 1024 took 7.0 s and 40.3 MiB for 0.8% fewer bytes. Memory is
 * the wall, so 512 (Apple's HEIC tile size too). Even, as 4:2:0 tiles must be (MIAF 7.3.11.4).
 */
export const AVIF_TILE = 512;

/** ImageGrid: at most 256 rows and columns (rows_minus_one and columns_minus_one are 8 bits). */
const MAX_GRID_SIDE = 256;

/**
 * A still AVIF of `pixels` at `options` (AVIF quality 0-100, cpu-used): `ftyp` (avif, mif1,
 * miaf, and MA1B, the AVIF baseline profile's brand, when the image keeps within it), a `meta`
 * of one image and its alpha (codecs/boxes imageMeta), and `mdat`.
 */
export function avifStillEncode(pixels: { data: Uint8ClampedArray; width: number; height: number }, options: { quality: number; speed: number }, usage: CodecUsage): ArrayBuffer {
  const { width, height } = pixels;
  const rgba = new Uint8Array(pixels.data.buffer, pixels.data.byteOffset, pixels.data.byteLength);
  const coder = av1StillCoder(options);
  let coded: { color: CodedAv1; alpha?: CodedAv1 } | undefined;
  try {
    coded = coder.code(rgba, width, height, hasTransparency(pixels));
    return stillFile(width, height, coded.color, coded.alpha);
  } finally {
    const js = coded ? coded.color.data.byteLength + (coded.alpha?.data.byteLength ?? 0) : 0;
    usage.note(coder.memoryBytes, pixels.data.byteLength + 2 * js);
    usage.retire(coder.memoryBytes);
  }
}

/**
 * Per-image quality's trial encode (formats/spec `trial`): the colour image's AV1 bits alone,
 * opaque, as `avifStillEncode` would code them. Decoded back by `avifTrialDecode` through our
 * libaom decoder, which runs in the same shared memories (libavif's, @jsquash's, owns one).
 */
export function avifTrialEncode(pixels: { data: Uint8ClampedArray; width: number; height: number }, options: { quality: number; speed: number }, usage: CodecUsage): ArrayBuffer {
  const coder = av1StillCoder(options);
  try {
    const rgba = new Uint8Array(pixels.data.buffer, pixels.data.byteOffset, pixels.data.byteLength);
    return coder.code(rgba, pixels.width, pixels.height, false).color.data.slice().buffer;
  } finally {
    usage.note(coder.memoryBytes, pixels.data.byteLength);
    usage.retire(coder.memoryBytes);
  }
}

/** `avifTrialEncode`'s bits as pixels: one sample of an image sequence of that size, its colours as the bitstream declares them. */
export function avifTrialDecode(coded: ArrayBuffer, width: number, height: number, usage: CodecUsage): Pixels {
  return avifSequenceStill(coded, { width, height, samples: [{ offset: 0, size: coded.byteLength }], durationsMs: [0], loop: 0, matrix: -1, fullRange: -1 }, usage);
}

/** AVIF 1.1 8.2: the baseline profile is AV1 Main profile at level 5.1 (seq_level_idx 13) or below. */
function baseline(color: CodedAv1): boolean {
  const info = av1SequenceInfo(color.av1C.subarray(12));
  return info !== null && info.profile === 0 && info.level <= 13;
}

function stillFile(width: number, height: number, color: CodedAv1, alpha?: CodedAv1): ArrayBuffer {
  const ftyp = box("ftyp", ascii("avif"), fields([0, 4]), ascii("avif"), ascii("mif1"), ascii("miaf"), ...(baseline(color) ? [ascii("MA1B")] : []));
  const metaFor = (at: number) =>
    imageMeta(width, height, { av1C: color.av1C, at, size: color.data.byteLength }, alpha ? { av1C: alpha.av1C, at: at + color.data.byteLength, size: alpha.data.byteLength } : undefined);
  // mdat's payload starts after ftyp, meta and mdat's own 8-byte header.
  const meta = metaFor(ftyp.byteLength + metaFor(0).byteLength + 8);
  const mdat = box("mdat", color.data, ...(alpha ? [alpha.data] : []));
  const out = new Uint8Array(ftyp.byteLength + meta.byteLength + mdat.byteLength);
  out.set(ftyp, 0);
  out.set(meta, ftyp.byteLength);
  out.set(mdat, ftyp.byteLength + meta.byteLength);
  return out.buffer;
}

/** A band of tiles sharing their stored rows [y0, y0 + TILE). */
interface TileBand {
  y0: number;
  tiles: { index: number; col: number; row: number }[];
}

/**
 * An AVIF grid encoder for an opaque image of `width` x `height` stored pixels shown under EXIF
 * orientation `orientation`; `options`: AVIF quality 0-100 and cpu-used.
 */
export function avifGridEncoder(width: number, height: number, orientation: number, options: { quality: number; speed: number }, tile = AVIF_TILE): RowEncoder {
  const swap = orientation >= 5 && orientation <= 8;
  const dw = swap ? height : width;
  const dh = swap ? width : height;
  const cols = Math.ceil(dw / tile);
  const rows = Math.ceil(dh / tile);
  // As few tiles as TILE allows, each as small as covers the image: 1200x800 is 2x2 tiles of
  // 600x400 rather than 3x2 of 512x512 (64% more pixels to code). Multiples of 8 (AV1's
  // smallest block), so the padding is under 8 pixels a tile.
  const tw = Math.ceil(dw / cols / 8) * 8;
  const th = Math.ceil(dh / rows / 8) * 8;
  // Stored rows a tile spans: its display height, or its width when the orientation swaps axes.
  const bandHeight = swap ? tw : th;
  if (cols > MAX_GRID_SIDE || rows > MAX_GRID_SIDE) throw new Error(`${dw}x${dh} needs a ${cols}x${rows} grid, over ${MAX_GRID_SIDE} a side`);
  // Display tiles padded at the right and bottom (the grid's output size crops them); each maps
  // to a TILE x TILE square of stored pixels, which may reach outside the image at any side.
  const bands = new Map<number, TileBand>();
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      const [, ay] = storedPosition(orientation, width, height, col * tw, row * th);
      const [, by] = storedPosition(orientation, width, height, col * tw + tw - 1, row * th + th - 1);
      const y0 = Math.min(ay, by);
      const band = bands.get(y0) ?? { y0, tiles: [] };
      band.tiles.push({ index: row * cols + col, col, row });
      bands.set(y0, band);
    }
  }
  const order = [...bands.values()].sort((a, b) => a.y0 - b.y0);
  const coder = av1StillCoder(options);
  const stride = width * 4;
  const band = new Uint8Array(stride * bandHeight);
  const tileRgba = new Uint8Array(tw * th * 4);
  const tile32 = new Uint32Array(tileRgba.buffer);
  const coded: CodedAv1[] = new Array(cols * rows);
  let codedBytes = 0;
  let next = 0; // stored row expected
  let current = 0; // index in `order`

  /** The band's first stored row inside the image, and one past its last. */
  const span = (b: TileBand) => [Math.max(0, b.y0), Math.min(height, b.y0 + bandHeight)] as const;

  function encodeBand(b: TileBand): void {
    const [first] = span(b);
    const band32 = new Uint32Array(band.buffer, 0, band.byteLength / 4);
    // storedPosition is affine: its origin and its steps along display x and y.
    const [ox, oy] = storedPosition(orientation, width, height, 0, 0);
    const [xx, xy] = storedPosition(orientation, width, height, 1, 0);
    const [yx, yy] = storedPosition(orientation, width, height, 0, 1);
    const [dxx, dxy, dyx, dyy] = [xx - ox, xy - oy, yx - ox, yy - oy];
    for (const t of b.tiles) {
      // Display pixel -> stored pixel, clamped into the image: the padding repeats the edge.
      for (let y = 0; y < th; y++) {
        const X = t.col * tw;
        const Y = t.row * th + y;
        let sx = ox + X * dxx + Y * dyx;
        let sy = oy + X * dxy + Y * dyy;
        for (let x = 0; x < tw; x++, sx += dxx, sy += dxy) {
          const cx = sx < 0 ? 0 : sx >= width ? width - 1 : sx;
          const cy = sy < 0 ? 0 : sy >= height ? height - 1 : sy;
          tile32[y * tw + x] = band32[(cy - first) * width + cx];
        }
      }
      const tileCoded = coder.code(tileRgba, tw, th, false).color;
      coded[t.index] = tileCoded;
      codedBytes += tileCoded.data.byteLength;
    }
  }

  return {
    bandRows: 16,
    write(rowsIn, count) {
      for (let r = 0; r < count; r++, next++) {
        const b = order[current];
        if (!b) throw new Error("avif encode failed: more rows than the image has");
        const [first, end] = span(b);
        band.set(rowsIn.subarray(r * stride, (r + 1) * stride), (next - first) * stride);
        if (next + 1 === end) {
          encodeBand(b);
          current++;
        }
      }
    },
    finish() {
      if (current !== order.length) throw new Error(`avif encode failed: ${next} of ${height} rows written`);
      return gridFile(dw, dh, tw, th, cols, rows, coded);
    },
    get memoryBytes() {
      return coder.memoryBytes;
    },
    get jsBytes() {
      return band.byteLength + tileRgba.byteLength + codedBytes;
    },
  };
}

/**
 * The file: `ftyp`, `meta` (hdlr pict; pitm the grid; iinf with the grid and its hidden av01
 * tiles; iref dimg from the grid to the tiles in row-major order; iprp with ispe/pixi/colr for
 * the grid and ispe/pixi/av1C/colr for every tile; iloc into mdat) and `mdat` (the ImageGrid
 * descriptor, then the tiles). All tiles must share one av1C (same size, same settings).
 */
function gridFile(width: number, height: number, tw: number, th: number, cols: number, rows: number, tiles: CodedAv1[]): ArrayBuffer {
  const av1C = tiles[0].av1C;
  for (const t of tiles) {
    if (t.av1C.length !== av1C.length || t.av1C.some((v, i) => v !== av1C[i])) throw new Error("avif encode failed: tiles disagree on av1C");
  }
  const shared = [NCLX_SRGB, fullBox("pixi", 0, 0, new Uint8Array([3, 8, 8, 8]))];
  // Property indices (1-based, in ipco order): grid ispe, tile ispe, av1C, then colr/pixi.
  const ipco = box(
    "ipco",
    fullBox("ispe", 0, 0, fields([width, 4], [height, 4])),
    fullBox("ispe", 0, 0, fields([tw, 4], [th, 4])),
    av1C,
    ...shared,
  );
  const sharedIdx = shared.map((_, i) => 4 + i);
  const GRID = 1;
  const ids = tiles.map((_, i) => 2 + i);
  // ipma v0, flags 0: 7-bit indices, the top bit says "essential" (av1C must be: 14496-12 8.11.14).
  const ipmaEntries = [fields([GRID, 2], [1 + sharedIdx.length, 1], [1, 1], ...sharedIdx.map((n): [number, 1] => [n, 1]))];
  for (const id of ids) ipmaEntries.push(fields([id, 2], [2 + sharedIdx.length, 1], [2, 1], [0x80 | 3, 1], ...sharedIdx.map((n): [number, 1] => [n, 1])));
  const iprp = box("iprp", ipco, fullBox("ipma", 0, 0, fields([1 + ids.length, 4]), ...ipmaEntries));
  const iinf = fullBox(
    "iinf",
    0,
    0,
    fields([1 + ids.length, 2]),
    fullBox("infe", 2, 0, fields([GRID, 2], [0, 2]), ascii("grid"), new Uint8Array([0])),
    // flags 1: hidden, a tile is not an image to show by itself (23008-12 9.3.1).
    ...ids.map((id) => fullBox("infe", 2, 1, fields([id, 2], [0, 2]), ascii("av01"), new Uint8Array([0]))),
  );
  const iref = fullBox("iref", 0, 0, box("dimg", fields([GRID, 2], [ids.length, 2], ...ids.map((id): [number, 2] => [id, 2]))));
  const hdlr = fullBox("hdlr", 0, 0, fields([0, 4]), ascii("pict"), fields([0, 4], [0, 4], [0, 4]), new Uint8Array([0]));
  const pitm = fullBox("pitm", 0, 0, fields([GRID, 2]));
  const large = width > 0xffff || height > 0xffff;
  const descriptor = large
    ? fields([0, 1], [1, 1], [rows - 1, 1], [cols - 1, 1], [width, 4], [height, 4])
    : fields([0, 1], [0, 1], [rows - 1, 1], [cols - 1, 1], [width, 2], [height, 2]);
  // iloc v0: 4-byte offsets and lengths, no base offset; offsets are known once meta's size is.
  const ilocFor = (mdatData: number) => {
    const entries: Uint8Array[] = [fields([GRID, 2], [0, 2], [1, 2], [mdatData, 4], [descriptor.byteLength, 4])];
    let at = mdatData + descriptor.byteLength;
    tiles.forEach((t, i) => {
      entries.push(fields([ids[i], 2], [0, 2], [1, 2], [at, 4], [t.data.byteLength, 4]));
      at += t.data.byteLength;
    });
    return fullBox("iloc", 0, 0, fields([0x44, 1], [0, 1], [1 + ids.length, 2]), ...entries);
  };
  const ftyp = box("ftyp", ascii("avif"), fields([0, 4]), ascii("avif"), ascii("mif1"), ascii("miaf"));
  const metaSize = fullBox("meta", 0, 0, hdlr, pitm, ilocFor(0), iinf, iref, iprp).byteLength;
  const mdatData = ftyp.byteLength + metaSize + 8;
  const meta = fullBox("meta", 0, 0, hdlr, pitm, ilocFor(mdatData), iinf, iref, iprp);
  const mdat = box("mdat", descriptor, ...tiles.map((t) => t.data));
  const out = new Uint8Array(ftyp.byteLength + meta.byteLength + mdat.byteLength);
  out.set(ftyp, 0);
  out.set(meta, ftyp.byteLength);
  out.set(mdat, ftyp.byteLength + meta.byteLength);
  return out.buffer;
}
