/**
 * @module formats/isobmff
 * The HEIF container (ISO/IEC 23008-12, on ISOBMFF, ISO/IEC 14496-12) that AVIF and HEIC share:
 * which of the two a file is (its brands), its primary item's size, alpha, transforms and
 * grid band, and the coded sizes of its items checked against the declared ones.
 */
import type { Av1Sequence, SequenceSample } from "../codecs/av1dec";
import { ALPHA_URN } from "../codecs/boxes";
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
  const animated = ftypBrands === "avis" || ftypBrands === "heis" || ftypBrands === "hevc";
  // An AV1 image sequence's frames (and, with no `meta`, its size) come from its track.
  const sequence = format === "avif" ? sequenceSummary(b) : null;
  const animation = animated && sequence ? { frames: sequence.frames, pixels: sequence.width * sequence.height * sequence.frames, tracks: sequence.alpha ? 2 : 1, highBitDepth: sequence.highBitDepth } : undefined;
  if (!meta) {
    if (!sequence) throw new HeaderError("ISOBMFF meta box missing");
    return { format, width: sequence.width, height: sequence.height, hasAlpha: sequence.alpha, animated: true, animation, orientation: [] };
  }
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
    hasAlpha: hasAlphaAux || !!sequence?.alpha,
    animated,
    animation,
    orientation,
    clap,
    bandHeight,
  };
}

/** The primary item's id, in its `meta`, and the whole boxes of its associated properties. */
function primary(b: Uint8Array): { meta: Box; id: number; properties: { type: string; bytes: Uint8Array }[] } {
  const meta = [...boxes(b, 0, b.length)].find((x) => x.type === "meta");
  if (!meta) throw new HeaderError("ISOBMFF meta box missing");
  const pitm = child(b, meta, "pitm", 4);
  const iprp = child(b, meta, "iprp", 4);
  const ipco = iprp && child(b, iprp, "ipco");
  const ipma = iprp && child(b, iprp, "ipma");
  if (!pitm || !ipco || !ipma) throw new HeaderError("ISOBMFF pitm/ipco/ipma missing");
  const id = b[pitm.body] === 0 ? u16be(b, pitm.body + 4) : u32be(b, pitm.body + 4);
  const props = [...boxes(b, ipco.body, ipco.end)];
  const properties = associatedProperties(b, ipma, id)
    .map((n) => props[n - 1])
    .filter((x): x is Box => !!x)
    .map((x) => ({ type: x.type, bytes: b.subarray(x.start, x.end) }));
  return { meta, id, properties };
}

/** The whole boxes of the properties associated with the primary item (whatever its data). */
export function primaryProperties(b: Uint8Array): { type: string; bytes: Uint8Array }[] {
  return primary(b).properties;
}

/**
 * The primary item of a HEIF file in memory (AVIF, HEIC), for re-wrapping a coded image in
 * another container (codecs/avif's grid): its item_type, its data (single extent), the whole
 * boxes of the properties associated with it, and how many items the file has.
 */
export function primaryItem(b: Uint8Array): { type: string; data: Uint8Array; properties: { type: string; bytes: Uint8Array }[]; itemCount: number } {
  const { meta, id, properties } = primary(b);
  const type = itemType(b, meta, id);
  const at = itemLocations(b, meta).get(id);
  if (!type || !at || at.end > b.length) throw new HeaderError(`ISOBMFF item ${id} has no data`);
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

/**
 * An image sequence (AVIF 1.1 section 7, HEIF section 7, on ISO/IEC 14496-12 tracks): the
 * colour track's samples and how long each shows, the alpha track's samples (an `auxv` track
 * referring to it by `auxl`, its `auxi` naming the alpha URN), the loop and the colour signal;
 * the shape the AV1 sequence decoder takes (codecs/av1dec).
 */
export type ImageSequence = Av1Sequence;


interface Track {
  id: number;
  handler: string;
  auxlOf: number[];
  entry?: Box;
  width: number;
  height: number;
  stbl: Box;
  timescale: number;
  /** tkhd duration in the movie's timescale; Infinity when all ones (indefinite). */
  duration: number;
  /** The edit list: its first entry's segment duration and whether it repeats (flags & 1). */
  edit?: { segment: number; repeat: boolean };
}

/** A FullBox field of `version` 0 (32 bits) or 1 (64 bits); all ones read as Infinity. */
function versioned(b: Uint8Array, at: number, version: number): number {
  if (version !== 1) {
    const v = u32be(b, at);
    return v === 0xffffffff ? Infinity : v;
  }
  const hi = u32be(b, at);
  const lo = u32be(b, at + 4);
  return hi === 0xffffffff && lo === 0xffffffff ? Infinity : hi * 2 ** 32 + lo;
}

function readTrack(b: Uint8Array, trak: Box): Track | null {
  const tkhd = child(b, trak, "tkhd");
  const mdia = child(b, trak, "mdia");
  const mdhd = mdia && child(b, mdia, "mdhd");
  const hdlr = mdia && child(b, mdia, "hdlr");
  const minf = mdia && child(b, mdia, "minf");
  const stbl = minf && child(b, minf, "stbl");
  if (!tkhd || !mdhd || !hdlr || !stbl) return null;
  need(b, tkhd.body + 40, "tkhd");
  const tv = b[tkhd.body];
  const id = u32be(b, tkhd.body + (tv === 1 ? 20 : 12));
  const duration = versioned(b, tkhd.body + (tv === 1 ? 28 : 20), tv);
  need(b, mdhd.body + 24, "mdhd");
  const timescale = u32be(b, mdhd.body + (b[mdhd.body] === 1 ? 20 : 12));
  need(b, hdlr.body + 12, "hdlr");
  const handler = ascii(b, hdlr.body + 8, 4);
  const auxlOf: number[] = [];
  const tref = child(b, trak, "tref");
  if (tref) {
    for (const r of boxes(b, tref.body, tref.end)) {
      if (r.type === "auxl") for (let i = r.body; i + 4 <= r.end; i += 4) auxlOf.push(u32be(b, i));
    }
  }
  let edit: Track["edit"];
  const edts = child(b, trak, "edts");
  const elst = edts && child(b, edts, "elst");
  if (elst) {
    need(b, elst.body + 16, "elst");
    const ev = b[elst.body];
    if (u32be(b, elst.body + 4) > 0) edit = { segment: versioned(b, elst.body + 8, ev), repeat: (b[elst.body + 3] & 1) === 1 };
  }
  // stsd: a FullBox with an entry count, then sample entries; a VisualSampleEntry has 78 bytes
  // of fields before its own boxes, width and height at 24 and 26 (14496-12 8.5.2, 12.1.3).
  const stsd = child(b, stbl, "stsd");
  let entry: Box | undefined;
  let width = 0;
  let height = 0;
  if (stsd) {
    entry = boxes(b, stsd.body + 8, stsd.end).next().value as Box | undefined;
    if (entry) {
      need(b, entry.body + 28, "sample entry");
      width = u16be(b, entry.body + 24);
      height = u16be(b, entry.body + 26);
    }
  }
  return { id, handler, auxlOf, entry, width, height, stbl, timescale, duration, edit };
}

/** The boxes inside a VisualSampleEntry (av1C, colr, auxi...). */
function entryChild(b: Uint8Array, entry: Box, type: string): Box | undefined {
  for (const x of boxes(b, entry.body + 78, entry.end)) if (x.type === type) return x;
  return undefined;
}

/** Sample positions from stsz, stsc and stco/co64 (14496-12 8.7.3, 8.7.4, 8.7.5). */
function trackSamples(b: Uint8Array, stbl: Box): SequenceSample[] {
  const stsz = child(b, stbl, "stsz");
  const stsc = child(b, stbl, "stsc");
  const stco = child(b, stbl, "stco") ?? child(b, stbl, "co64");
  if (!stsz || !stsc || !stco) throw new HeaderError("image sequence: sample tables missing");
  need(b, stsz.body + 12, "stsz");
  const fixed = u32be(b, stsz.body + 4);
  const count = u32be(b, stsz.body + 8);
  // Every sample takes at least a byte of the file: a larger count is a lie (and a loop bomb).
  if (count > b.length) throw new HeaderError(`image sequence: ${count} samples in ${b.length} bytes`);
  if (!fixed) need(b, stsz.body + 12 + 4 * count, "stsz");
  const sizes = (n: number) => (fixed ? fixed : u32be(b, stsz.body + 12 + 4 * n));
  const wide = stco.type === "co64";
  need(b, stco.body + 8, stco.type);
  const chunks = u32be(b, stco.body + 4);
  need(b, stco.body + 8 + chunks * (wide ? 8 : 4), stco.type);
  const chunkOffset = (n: number) => (wide ? u32be(b, stco.body + 8 + 8 * n) * 2 ** 32 + u32be(b, stco.body + 12 + 8 * n) : u32be(b, stco.body + 8 + 4 * n));
  need(b, stsc.body + 8, "stsc");
  const runs = u32be(b, stsc.body + 4);
  need(b, stsc.body + 8 + 12 * runs, "stsc");
  const out: SequenceSample[] = [];
  for (let r = 0; r < runs && out.length < count; r++) {
    const first = u32be(b, stsc.body + 8 + 12 * r) - 1;
    const perChunk = u32be(b, stsc.body + 12 + 12 * r);
    const last = r + 1 < runs ? u32be(b, stsc.body + 8 + 12 * (r + 1)) - 1 : chunks;
    if (first < 0 || last > chunks || perChunk === 0) throw new HeaderError("image sequence: bad stsc");
    for (let c = first; c < last && out.length < count; c++) {
      let offset = chunkOffset(c);
      for (let s = 0; s < perChunk && out.length < count; s++) {
        const size = sizes(out.length);
        out.push({ offset, size });
        offset += size;
      }
    }
  }
  if (out.length !== count) throw new HeaderError(`image sequence: ${count} samples but chunks for ${out.length}`);
  return out;
}

/** Each sample's display time in milliseconds from stts (14496-12 8.6.1.2), rounded on the running total. */
function trackDurations(b: Uint8Array, stbl: Box, timescale: number, count: number): number[] {
  const stts = child(b, stbl, "stts");
  if (!stts || !timescale) throw new HeaderError("image sequence: no sample times");
  need(b, stts.body + 8, "stts");
  const runs = u32be(b, stts.body + 4);
  need(b, stts.body + 8 + 8 * runs, "stts");
  const out: number[] = [];
  let ticks = 0;
  let shown = 0;
  for (let r = 0; r < runs && out.length < count; r++) {
    const n = u32be(b, stts.body + 8 + 8 * r);
    const delta = u32be(b, stts.body + 12 + 8 * r);
    for (let i = 0; i < n && out.length < count; i++) {
      ticks += delta;
      const end = Math.round((ticks * 1000) / timescale);
      out.push(end - shown);
      shown = end;
    }
  }
  while (out.length < count) out.push(out.length ? out[out.length - 1] : 100);
  return out;
}

/** The colour track (an `av01` picture track) and its alpha track, if any. */
function sequenceTracks(b: Uint8Array): { color: Track & { entry: Box }; alphaTrack?: Track } | null {
  const moov = [...boxes(b, 0, b.length)].find((x) => x.type === "moov");
  if (!moov) return null;
  const tracks: Track[] = [];
  for (const trak of boxes(b, moov.body, moov.end)) {
    if (trak.type !== "trak") continue;
    const t = readTrack(b, trak);
    if (t) tracks.push(t);
  }
  const color = tracks.find((t) => t.handler === "pict" && t.entry?.type === "av01" && !t.auxlOf.length);
  if (!color || !color.entry) return null;
  const alphaTrack = tracks.find((t) => {
    if (t.entry?.type !== "av01" || !t.auxlOf.includes(color.id)) return false;
    const auxi = entryChild(b, t.entry, "auxi");
    return !!auxi && ascii(b, auxi.body + 4, Math.min(auxi.end - auxi.body - 4, ALPHA_URN.length)) === ALPHA_URN;
  });
  return { color: color as Track & { entry: Box }, alphaTrack };
}

/**
 * What the header probe reports of an image sequence, read without building its sample
 * list: the colour track's size, its sample count (the frames) and whether it has an alpha
 * track. Null when there is none or its boxes are past the bytes at hand.
 */
export function sequenceSummary(b: Uint8Array): { width: number; height: number; frames: number; alpha: boolean; highBitDepth: boolean } | null {
  try {
    const found = sequenceTracks(b);
    const stsz = found && child(b, found.color.stbl, "stsz");
    if (!found || !stsz) return null;
    need(b, stsz.body + 12, "stsz");
    // av1C (AV1-ISOBMFF 2.3.3): its third byte holds high_bitdepth (10 or 12 bits) in bit 6.
    const av1C = entryChild(b, found.color.entry, "av1C");
    const highBitDepth = !!av1C && av1C.body + 3 <= b.length && (b[av1C.body + 2] & 0x40) !== 0;
    return { width: found.color.width, height: found.color.height, frames: u32be(b, stsz.body + 8), alpha: !!found.alphaTrack, highBitDepth };
  } catch (e) {
    if (e instanceof HeaderError || e instanceof RangeError) return null;
    throw e;
  }
}

/**
 * The file's image sequence, or null when it has no AV1 track. The loop follows AVIF 1.1
 * 7.3 (as libavif reads it): an edit list that repeats plays `track duration / segment
 * duration` times, forever when the track duration is indefinite; one that does not repeat
 * plays once; no edit list is taken as forever (what browsers do).
 */
export function imageSequence(b: Uint8Array): ImageSequence | null {
  const found = sequenceTracks(b);
  if (!found) return null;
  const { color, alphaTrack } = found;
  const samples = trackSamples(b, color.stbl);
  const alpha = alphaTrack ? trackSamples(b, alphaTrack.stbl) : undefined;
  if (alpha && alpha.length !== samples.length) throw new HeaderError(`image sequence: ${samples.length} colour samples but ${alpha.length} alpha samples`);
  let loop = 0;
  if (color.edit) {
    if (!color.edit.repeat) loop = 1;
    else if (Number.isFinite(color.duration) && color.edit.segment > 0 && Number.isFinite(color.edit.segment)) loop = Math.max(1, Math.round(color.duration / color.edit.segment));
  }
  let matrix = -1;
  let fullRange = -1;
  const colr = entryChild(b, color.entry, "colr");
  if (colr && colr.body + 11 <= colr.end && ascii(b, colr.body, 4) === "nclx") {
    matrix = u16be(b, colr.body + 8);
    fullRange = b[colr.body + 10] >> 7;
  }
  return {
    width: color.width,
    height: color.height,
    samples,
    durationsMs: trackDurations(b, color.stbl, color.timescale, samples.length),
    alpha,
    loop,
    matrix,
    fullRange,
  };
}
