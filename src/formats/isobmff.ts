/**
 * @module formats/isobmff
 * The HEIF container (ISO/IEC 23008-12, on ISOBMFF, ISO/IEC 14496-12) that AVIF and HEIC share:
 * which of the two a file is (its brands), its primary item's size, alpha, transforms and
 * grid band, and the coded sizes of its items checked against the declared ones.
 */
import { av1SequenceSize, hevcConfigSize, type CodedSize } from "../bitstream";
import { ascii, HeaderError, need, u16be, u32be, type ImageHeader, type Rect } from "./probe";
import type { FormatId } from "./spec";

const AVIF_BRANDS = new Set(["avif", "avis"]);
const HEIC_BRANDS = new Set(["heic", "heix", "heim", "heis", "hevc", "hevx"]);

export function isobmffBrandFormat(b: Uint8Array): FormatId | null {
  const size = u32be(b, 0);
  const end = Math.min(b.length, Math.max(size, 16));
  const brands = [ascii(b, 8, 4)];
  for (let i = 16; i + 4 <= end; i += 4) brands.push(ascii(b, i, 4));
  // The major brand decides when it is specific; otherwise any compatible brand does.
  if (AVIF_BRANDS.has(brands[0])) return "avif";
  if (HEIC_BRANDS.has(brands[0])) return "heic";
  if (brands.some((x) => AVIF_BRANDS.has(x))) return "avif";
  if (brands.some((x) => HEIC_BRANDS.has(x))) return "heic";
  return null;
}

interface Box {
  type: string;
  start: number;
  /** First byte of the payload. */
  body: number;
  end: number;
}

function* boxes(b: Uint8Array, from: number, to: number): Generator<Box> {
  let i = from;
  while (i + 8 <= to) {
    let size = u32be(b, i);
    const type = ascii(b, i + 4, 4);
    let body = i + 8;
    if (size === 1) {
      need(b, i + 16, "ISOBMFF largesize");
      const hi = u32be(b, i + 8);
      if (hi !== 0) throw new HeaderError("ISOBMFF box larger than 4 GiB");
      size = u32be(b, i + 12);
      body = i + 16;
    } else if (size === 0) {
      size = to - i;
    }
    if (size < body - i) throw new HeaderError(`ISOBMFF box ${type} too small`);
    yield { type, start: i, body, end: Math.min(i + size, to) };
    i += size;
  }
}

function child(b: Uint8Array, parent: Box, type: string, skip = 0): Box | undefined {
  for (const box of boxes(b, parent.body + skip, parent.end)) if (box.type === type) return box;
  return undefined;
}

/**
 * ISO/IEC 23008-12 (HEIF, which AVIF profiles): the primary item (pitm) has its size in an
 * `ispe` property associated through `ipma`. Grids carry the full canvas size there too.
 */
export function parseIsobmff(b: Uint8Array, format: FormatId): ImageHeader {
  const ftypBrands = ascii(b, 8, 4);
  let meta: Box | undefined;
  for (const box of boxes(b, 0, b.length)) {
    if (box.type === "meta") {
      meta = box;
      break;
    }
  }
  if (!meta) throw new HeaderError("ISOBMFF meta box missing");
  // meta, pitm, ipma and ispe are FullBoxes: 4 bytes of version and flags precede their payload.
  const pitm = child(b, meta, "pitm", 4);
  const iprp = child(b, meta, "iprp", 4);
  const ipco = iprp && child(b, iprp, "ipco");
  if (!ipco) throw new HeaderError("ISOBMFF ipco box missing");
  const props: Box[] = [...boxes(b, ipco.body, ipco.end)];
  const primary = pitm ? (b[pitm.body] === 0 ? u16be(b, pitm.body + 4) : u32be(b, pitm.body + 4)) : 1;
  const assoc = iprp && child(b, iprp, "ipma");
  const primaryProps = assoc ? associatedProperties(b, assoc, primary) : [];
  const hasAlphaAux = props.some((p) => p.type === "auxC" && ascii(b, p.body + 4, p.end - p.body - 4).includes("alpha"));
  let ispe = primaryProps.map((n) => props[n - 1]).find((p) => p?.type === "ispe");
  if (!ispe) {
    // Fall back to the largest declared size so an odd file is over-estimated, not under.
    let best = 0;
    for (const p of props) {
      if (p.type !== "ispe") continue;
      need(b, p.body + 12, "ispe");
      const area = u32be(b, p.body + 4) * u32be(b, p.body + 8);
      if (area >= best) {
        best = area;
        ispe = p;
      }
    }
  }
  if (!ispe) throw new HeaderError("ISOBMFF ispe property missing");
  need(b, ispe.body + 12, "ispe");
  const width = u32be(b, ispe.body + 4);
  const height = u32be(b, ispe.body + 8);
  // Transformative properties apply in the order they are associated (HEIF 6.5.1).
  const orientation: number[] = [];
  let clap: Rect | undefined;
  for (const n of primaryProps) {
    const p = props[n - 1];
    if (!p) continue;
    if (p.type === "irot") {
      need(b, p.body + 1, "irot");
      // HEIF 6.5.10: angle * 90 degrees anti-clockwise; as EXIF orientations: 90 ccw is 8, 270 ccw is 6.
      const turn = [0, 8, 3, 6][b[p.body] & 3];
      if (turn) orientation.push(turn);
    } else if (p.type === "imir") {
      need(b, p.body + 1, "imir");
      // ISO/IEC 23008-12:2022 6.5.12 `mode`: 0 exchanges top and bottom (EXIF 4), 1 left and
      // right (EXIF 2). Checked against link-u's kimono.mirror-* files.
      orientation.push(b[p.body] & 1 ? 2 : 4);
    } else if (p.type === "clap") {
      clap = cleanAperture(b, p, width, height);
    }
  }
  // A grid's tiles carry their own (smaller) ispe; the tallest such bounds the band (a
  // thumbnail counted by mistake only over-estimates).
  let bandHeight = height;
  if (itemType(b, meta, primary) === "grid") {
    bandHeight = 0;
    for (const p of props) {
      if (p.type !== "ispe" || p === ispe || p.body + 12 > b.length) continue;
      const h = u32be(b, p.body + 8);
      if (h < height && u32be(b, p.body + 4) <= width) bandHeight = Math.max(bandHeight, h);
    }
    if (bandHeight === 0) bandHeight = height;
  }
  checkCodedSizes(b, meta, props, iprp && child(b, iprp, "ipma"), { width, height });
  return {
    format,
    width,
    height,
    hasAlpha: hasAlphaAux,
    animated: ftypBrands === "avis" || ftypBrands === "heis" || ftypBrands === "hevc",
    orientation,
    clap,
    bandHeight,
  };
}

/**
 * The primary item of a HEIF file in memory (AVIF, HEIC), for re-wrapping a coded image in
 * another container (codecs/avif's grid): its item_type, its data (single extent), the whole
 * boxes of the properties associated with it, and how many items the file has.
 */
export function primaryItem(b: Uint8Array): { type: string; data: Uint8Array; properties: { type: string; bytes: Uint8Array }[]; itemCount: number } {
  const meta = [...boxes(b, 0, b.length)].find((x) => x.type === "meta");
  if (!meta) throw new HeaderError("ISOBMFF meta box missing");
  const pitm = child(b, meta, "pitm", 4);
  const iprp = child(b, meta, "iprp", 4);
  const ipco = iprp && child(b, iprp, "ipco");
  const ipma = iprp && child(b, iprp, "ipma");
  if (!pitm || !ipco || !ipma) throw new HeaderError("ISOBMFF pitm/ipco/ipma missing");
  const id = b[pitm.body] === 0 ? u16be(b, pitm.body + 4) : u32be(b, pitm.body + 4);
  const type = itemType(b, meta, id);
  const at = itemLocations(b, meta).get(id);
  if (!type || !at || at.end > b.length) throw new HeaderError(`ISOBMFF item ${id} has no data`);
  const props = [...boxes(b, ipco.body, ipco.end)];
  const properties = associatedProperties(b, ipma, id)
    .map((n) => props[n - 1])
    .filter((x): x is Box => !!x)
    .map((x) => ({ type: x.type, bytes: b.subarray(x.start, x.end) }));
  return { type, data: b.subarray(at.start, at.end), properties, itemCount: items(b, meta).length };
}

/** Items and their item_type from `iinf`/`infe` (ISO/IEC 14496-12 8.11.6; infe version 2 or 3). */
function items(b: Uint8Array, meta: Box): { id: number; type: string }[] {
  const iinf = child(b, meta, "iinf", 4);
  if (!iinf || iinf.body + 2 > b.length) return [];
  const skip = b[iinf.body] === 0 ? 6 : 8;
  const out = [];
  for (const infe of boxes(b, iinf.body + skip, iinf.end)) {
    if (infe.type !== "infe" || infe.body + 12 > b.length) continue;
    const version = b[infe.body];
    if (version < 2) continue;
    const id = version === 2 ? u16be(b, infe.body + 4) : u32be(b, infe.body + 4);
    out.push({ id, type: ascii(b, infe.body + (version === 2 ? 8 : 10), 4) });
  }
  return out;
}

function itemType(b: Uint8Array, meta: Box, id: number): string | undefined {
  return items(b, meta).find((i) => i.id === id)?.type;
}

/**
 * Where each item's data starts and ends (its first extent), from `iloc` (ISO/IEC 14496-12
 * 8.11.3): construction method 0 is a file offset, 1 an offset into `idat`.
 */
function itemLocations(b: Uint8Array, meta: Box): Map<number, { start: number; end: number }> {
  const out = new Map<number, { start: number; end: number }>();
  const iloc = child(b, meta, "iloc", 4);
  if (!iloc) return out;
  const idat = child(b, meta, "idat", 4);
  const version = b[iloc.body];
  let i = iloc.body + 4;
  const read = (size: number) => {
    need(b, i + size, "iloc");
    const v = size === 0 ? 0 : size === 2 ? u16be(b, i) : size === 4 ? u32be(b, i) : u32be(b, i) * 2 ** 32 + u32be(b, i + 4);
    i += size;
    return v;
  };
  const sizes = read(2);
  const [offsetSize, lengthSize, baseSize, indexSize] = [sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15, version > 0 ? sizes & 15 : 0];
  const count = read(version < 2 ? 2 : 4);
  for (let n = 0; n < count && i < iloc.end; n++) {
    const id = read(version < 2 ? 2 : 4);
    const method = version > 0 ? read(2) & 15 : 0;
    read(2); // data_reference_index
    const base = read(baseSize);
    const extents = read(2);
    let first: { start: number; end: number } | undefined;
    for (let e = 0; e < extents; e++) {
      if (indexSize) read(indexSize);
      const offset = read(offsetSize);
      const length = read(lengthSize);
      if (e > 0) continue;
      const origin = method === 0 ? 0 : method === 1 && idat ? idat.body : NaN;
      // Length 0 means "to the end of the file" (8.11.3.3).
      if (!Number.isNaN(origin)) first = { start: origin + base + offset, end: length ? origin + base + offset + length : b.length };
    }
    if (first) out.set(id, first);
  }
  return out;
}

/** Beyond the declared size, what a coded picture may add: alignment to coding blocks, cropped by the conformance window. */
const CODED_SLACK = 64;

/**
 * Every coded item (AV1 or HEVC: the primary image, grid tiles, alpha, thumbnails) must code
 * no larger a picture than the container declares for it (its `ispe`, else the canvas): the
 * decoder allocates from the stream's own headers, not from `ispe`. Data beyond the bytes at
 * hand (a header probe) is left to the full check on delivery.
 */
function checkCodedSizes(b: Uint8Array, meta: Box, props: Box[], ipma: Box | undefined, canvas: CodedSize): void {
  const coded = items(b, meta).filter((it) => it.type === "av01" || it.type === "hvc1");
  if (!coded.length) return;
  const locations = itemLocations(b, meta);
  for (const it of coded) {
    const own = (ipma ? associatedProperties(b, ipma, it.id) : []).map((n) => props[n - 1]).filter((p): p is Box => !!p);
    const ispe = own.find((p) => p.type === "ispe");
    const declared = ispe && ispe.body + 12 <= b.length ? { width: u32be(b, ispe.body + 4), height: u32be(b, ispe.body + 8) } : canvas;
    let size: CodedSize | null = null;
    try {
      if (it.type === "hvc1") {
        const hvcC = own.find((p) => p.type === "hvcC");
        if (hvcC) size = hevcConfigSize(b, hvcC.body, hvcC.end);
      } else {
        const at = locations.get(it.id);
        if (at && at.start < b.length) size = av1SequenceSize(b, at.start, Math.min(at.end, b.length));
        const av1C = own.find((p) => p.type === "av1C");
        // av1C's configOBUs may repeat the sequence header (ISO/IEC AV1-ISOBMFF 2.3.3).
        if (!size && av1C && av1C.body + 4 < av1C.end) size = av1SequenceSize(b, av1C.body + 4, av1C.end);
      }
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      const at = locations.get(it.id);
      // Cut off by the probe, not by the file: decided on delivery, with the whole file.
      if (it.type === "av01" && at && at.end > b.length) continue;
      throw new HeaderError(`${it.type} item ${it.id}: ${e.message}`);
    }
    if (size && (size.width > declared.width + CODED_SLACK || size.height > declared.height + CODED_SLACK)) {
      throw new HeaderError(`${it.type} item ${it.id} codes ${size.width}x${size.height} where the container declares ${declared.width}x${declared.height}`);
    }
  }
}

/** ISO/IEC 14496-12 12.1.4: a centred aperture of rational size, offset from the centre. */
function cleanAperture(b: Uint8Array, p: Box, width: number, height: number): Rect | undefined {
  need(b, p.body + 32, "clap");
  const r = (i: number, signed: boolean) => {
    const n = u32be(b, p.body + i * 8);
    const d = u32be(b, p.body + i * 8 + 4);
    return d === 0 ? NaN : (signed ? n | 0 : n) / d;
  };
  const w = r(0, false);
  const h = r(1, false);
  const cx = r(2, true) + (width - 1) / 2;
  const cy = r(3, true) + (height - 1) / 2;
  const x = Math.round(cx - (w - 1) / 2);
  const y = Math.round(cy - (h - 1) / 2);
  const rect = { x, y, width: Math.round(w), height: Math.round(h) };
  // An aperture outside the image (or a zero denominator) is ignored rather than trusted.
  if (!(rect.width > 0 && rect.height > 0 && x >= 0 && y >= 0 && x + rect.width <= width && y + rect.height <= height)) return undefined;
  return rect;
}

/** 1-based indices into ipco of the properties associated with `itemId`. */
function associatedProperties(b: Uint8Array, ipma: Box, itemId: number): number[] {
  const version = b[ipma.body];
  const flags = b[ipma.body + 3];
  let i = ipma.body + 4;
  need(b, i + 4, "ipma");
  const count = u32be(b, i);
  i += 4;
  for (let e = 0; e < count && i < ipma.end; e++) {
    const id = version < 1 ? u16be(b, i) : u32be(b, i);
    i += version < 1 ? 2 : 4;
    const n = b[i++];
    const out: number[] = [];
    for (let k = 0; k < n; k++) {
      if (flags & 1) {
        out.push(u16be(b, i) & 0x7fff);
        i += 2;
      } else {
        out.push(b[i] & 0x7f);
        i += 1;
      }
    }
    if (id === itemId) return out;
  }
  return [];
}
