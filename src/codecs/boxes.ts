/**
 * @module codecs/boxes
 * Writing ISOBMFF (ISO/IEC 14496-12) boxes, for the AVIF files the worker assembles itself:
 * stills and grids (codecs/avif) and image sequences (codecs/av1seq), and the AVIF pieces
 * both write: an AV1 item's `av1C`, its colour, and a `meta` of one image with its alpha.
 */
import { av1SequenceInfo } from "../bitstream";
import { CodecError } from "./standalone";

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
 * AV1CodecConfigurationRecord (AV1-ISOBMFF 2.3.3) as an `av1C` box: marker and version 1;
 * profile, level, tier; 8-bit 4:2:0 (subsampling x and y, chroma sample position unknown), or
 * monochrome for alpha; then the sequence header OBU.
 */
export function av1Config(sequenceHeader: Uint8Array, monochrome: boolean): Uint8Array {
  const info = av1SequenceInfo(sequenceHeader);
  if (!info) throw new CodecError("avif encode failed: no sequence header");
  return box("av1C", new Uint8Array([0x81, (info.profile << 5) | info.level, (info.tier << 7) | (monochrome ? 0b11100 : 0b1100), 0]), sequenceHeader);
}

/** nclx: BT.709 primaries, sRGB transfer, BT.601 matrix, full range, as our encoder signals. */
export const NCLX_SRGB = box("colr", ascii("nclx"), fields([1, 2], [13, 2], [6, 2], [0x80, 1]));

/** The alpha plane's auxiliary type as `auxC` and `auxi` carry it: a NUL-terminated string. */
/** AVIF 1.1 / MIAF: the auxiliary type of an alpha plane (written here, read by formats/isobmff). */
export const ALPHA_URN = "urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";
export const ALPHA_AUX_TYPE = new Uint8Array([...ascii(ALPHA_URN), 0]);

/** One coded AV1 image in the file: its `av1C`, where its bytes start and how many. */
interface ItemPlace {
  av1C: Uint8Array;
  at: number;
  size: number;
}

/**
 * A `meta` (HEIF 23008-12) whose primary item 1 is a `width` x `height` AV1 image; item 2, when
 * `alpha` is given, is its alpha plane: an auxiliary image of item 1 (iref auxl, auxC with the
 * alpha URN; HEIF 6.6.2.1, AVIF 1.1 4). Its size does not depend on the offsets.
 */
export function imageMeta(width: number, height: number, color: ItemPlace, alpha?: ItemPlace): Uint8Array {
  const hdlr = fullBox("hdlr", 0, 0, fields([0, 4]), ascii("pict"), fields([0, 4], [0, 4], [0, 4]), new Uint8Array([0]));
  const pitm = fullBox("pitm", 0, 0, fields([1, 2]));
  const items = alpha ? 2 : 1;
  // iloc v0: 4-byte offsets and lengths, no base offset.
  const iloc = fullBox(
    "iloc",
    0,
    0,
    fields([0x44, 1], [0, 1], [items, 2]),
    fields([1, 2], [0, 2], [1, 2], [color.at, 4], [color.size, 4]),
    ...(alpha ? [fields([2, 2], [0, 2], [1, 2], [alpha.at, 4], [alpha.size, 4])] : []),
  );
  const infe = (id: number) => fullBox("infe", 2, 0, fields([id, 2], [0, 2]), ascii("av01"), new Uint8Array([0]));
  const iinf = fullBox("iinf", 0, 0, fields([items, 2]), infe(1), ...(alpha ? [infe(2)] : []));
  // Properties: 1 ispe, 2 av1C, 3 colr, 4 pixi (3 channels); with alpha 5 av1C, 6 pixi (1), 7 auxC.
  const ispe = fullBox("ispe", 0, 0, fields([width, 4], [height, 4]));
  const ipco = box(
    "ipco",
    ispe,
    color.av1C,
    NCLX_SRGB,
    fullBox("pixi", 0, 0, new Uint8Array([3, 8, 8, 8])),
    ...(alpha ? [alpha.av1C, fullBox("pixi", 0, 0, new Uint8Array([1, 8])), fullBox("auxC", 0, 0, ALPHA_AUX_TYPE)] : []),
  );
  // ipma: the 0x80 bit marks an essential property (av1C).
  const ipma = fullBox("ipma", 0, 0, fields([items, 4]), fields([1, 2], [4, 1], [1, 1], [0x80 | 2, 1], [3, 1], [4, 1]), ...(alpha ? [fields([2, 2], [4, 1], [1, 1], [0x80 | 5, 1], [6, 1], [7, 1])] : []));
  const iref = alpha ? [fullBox("iref", 0, 0, box("auxl", fields([2, 2], [1, 2], [1, 2])))] : [];
  return fullBox("meta", 0, 0, hdlr, pitm, iloc, iinf, ...iref, box("iprp", ipco, ipma));
}
