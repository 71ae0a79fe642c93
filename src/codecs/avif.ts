/**
 * @module codecs/avif
 * Large AVIF written as a grid of independently coded tiles (ISO/IEC 23008-12 6.6.2.3 `grid`,
 * which AVIF and MIAF allow; iPhone HEIC photos are built the same way). libaom needs the
 * whole picture it codes, and its memory grows with it (847.6 MB for 24 MP through
 * @jsquash/avif), so a full-size photo is cut into tiles of at most TILE x TILE, each coded by
 * the same @jsquash/avif instance (16 MiB of WASM at 512x512), and the coded tiles are wrapped
 * in one file whose primary item is the grid. Rows arrive in stored orientation and tiles are
 * cut in display orientation, each turned on the way, so the file needs no irot/imir (which
 * some decoders ignore): the pixels are upright. Only a band of one tile's source rows and one
 * tile of RGBA are held, besides the coded tiles.
 */
import avifEncFactory from "@jsquash/avif/codec/enc/avif_enc.js";
import { defaultOptions as avifDefaults } from "@jsquash/avif/meta.js";
import { wasmModules } from "../../wasm/modules";
import { primaryItem } from "../formats/isobmff";
import { instantiate, memoryBytes, type EmscriptenModule } from "./emscripten";
import { storedPosition, type RowEncoder } from "./rows";

/**
 * Tile side. Measured on a 12 MP photo at q80 speed 8 (Node): 512 took 9.0 s and 16 MiB of
 * encoder memory for 1.956 MB; 1024 took 7.0 s and 40.3 MiB for 0.8% fewer bytes. Memory is
 * the wall, so 512 (Apple's HEIC tile size too). Even, as 4:2:0 tiles must be (MIAF 7.3.11.4).
 */
export const AVIF_TILE = 512;

/** ImageGrid: at most 256 rows and columns (rows_minus_one and columns_minus_one are 8 bits). */
const MAX_GRID_SIDE = 256;

interface AvifEncoderModule extends EmscriptenModule {
  encode(data: BufferSource, width: number, height: number, options: object): Uint8Array | null;
}

interface CodedTile {
  data: Uint8Array;
  /** The tile's property boxes: av1C, and colr/pixi when the encoder wrote them. */
  properties: { type: string; bytes: Uint8Array }[];
}

/** A band of tiles sharing their stored rows [y0, y0 + TILE). */
interface TileBand {
  y0: number;
  tiles: { index: number; col: number; row: number }[];
}

/**
 * An AVIF grid encoder for an opaque image of `width` x `height` stored pixels shown under EXIF
 * orientation `orientation`; `options` are @jsquash/avif's (quality, speed).
 */
export async function avifGridEncoder(width: number, height: number, orientation: number, options: { quality: number; speed: number }, tile = AVIF_TILE): Promise<RowEncoder> {
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
  const mod = (await instantiate(avifEncFactory, wasmModules.avifEnc)) as unknown as AvifEncoderModule;
  const opts = { ...avifDefaults, quality: options.quality, speed: options.speed };
  const stride = width * 4;
  const band = new Uint8Array(stride * bandHeight);
  const tileRgba = new Uint8Array(tw * th * 4);
  const tile32 = new Uint32Array(tileRgba.buffer);
  const coded: CodedTile[] = new Array(cols * rows);
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
      const out = mod.encode(tileRgba, tw, th, opts);
      if (!out) throw new Error("avif encode failed: the encoder returned nothing");
      const item = primaryItem(out);
      if (item.type !== "av01" || item.itemCount !== 1) throw new Error(`avif encode failed: a tile came out as ${item.itemCount} items (${item.type})`);
      // Copies: the views point into the encoder's memory, reused by the next tile.
      const properties = item.properties.filter((p) => p.type === "av1C" || p.type === "colr" || p.type === "pixi").map((p) => ({ type: p.type, bytes: p.bytes.slice() }));
      coded[t.index] = { data: item.data.slice(), properties };
      codedBytes += item.data.byteLength;
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
      return memoryBytes(mod);
    },
    get jsBytes() {
      return band.byteLength + tileRgba.byteLength + codedBytes;
    },
  };
}

/** ISO/IEC 14496-12 4.2: a box (size, type, payload). */
export function box(type: string, ...parts: Uint8Array[]): Uint8Array {
  const size = 8 + parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, size);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  let at = 8;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A FullBox: version and 24 bits of flags before the payload. */
export const fullBox = (type: string, version: number, flags: number, ...parts: Uint8Array[]) =>
  box(type, new Uint8Array([version, (flags >> 16) & 255, (flags >> 8) & 255, flags & 255]), ...parts);

/** Big-endian fields: [value, bytes]. */
export function fields(...values: [number, 1 | 2 | 4][]): Uint8Array {
  const out = new Uint8Array(values.reduce((n, [, b]) => n + b, 0));
  const v = new DataView(out.buffer);
  let at = 0;
  for (const [value, bytes] of values) {
    if (bytes === 1) v.setUint8(at, value);
    else if (bytes === 2) v.setUint16(at, value);
    else v.setUint32(at, value);
    at += bytes;
  }
  return out;
}

export const ascii = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));

/**
 * The file: `ftyp`, `meta` (hdlr pict; pitm the grid; iinf with the grid and its hidden av01
 * tiles; iref dimg from the grid to the tiles in row-major order; iprp with ispe/pixi/colr for
 * the grid and ispe/pixi/av1C/colr for every tile; iloc into mdat) and `mdat` (the ImageGrid
 * descriptor, then the tiles). All tiles must share one av1C (same size, same settings).
 */
function gridFile(width: number, height: number, tw: number, th: number, cols: number, rows: number, tiles: CodedTile[]): ArrayBuffer {
  const av1C = tiles[0].properties.find((p) => p.type === "av1C");
  if (!av1C) throw new Error("avif encode failed: a tile has no av1C");
  for (const t of tiles) {
    const own = t.properties.find((p) => p.type === "av1C");
    if (!own || own.bytes.length !== av1C.bytes.length || own.bytes.some((v, i) => v !== av1C.bytes[i])) throw new Error("avif encode failed: tiles disagree on av1C");
  }
  const shared = tiles[0].properties.filter((p) => p.type !== "av1C");
  // Property indices (1-based, in ipco order): grid ispe, tile ispe, av1C, then colr/pixi.
  const ipco = box(
    "ipco",
    fullBox("ispe", 0, 0, fields([width, 4], [height, 4])),
    fullBox("ispe", 0, 0, fields([tw, 4], [th, 4])),
    av1C.bytes,
    ...shared.map((p) => p.bytes),
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
