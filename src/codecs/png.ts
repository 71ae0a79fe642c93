/**
 * @module codecs/png
 * PNG decoded in JS, a band of rows at a time: the image data is inflated by the runtime's own
 * zlib (`DecompressionStream("deflate")`: PNG's IDAT stream is a zlib stream, PNG spec 10.1),
 * unfiltered row by row (spec 9) and expanded to 8-bit RGBA. No WASM instance is involved, so a
 * file that lies about its size or fails halfway leaves nothing behind once the job drops it:
 * the wasm-bindgen decoder this replaces kept a module-wide memory that only ever grew (a
 * 196-byte PNG declaring 3000x3000 grew it by 34.6 MiB per request).
 *
 * Interlaced (Adam7) files deliver their last rows only in the last pass, so they are
 * assembled whole before the first band is handed over; the budget prices them as such.
 */
import { BAND_ROWS } from "./jpeg";
import type { RowDecoder } from "./rows";

const u32 = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;

/** Samples per pixel by colour type (PNG spec 6.1). */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Allowed bit depths by colour type (PNG spec 11.2.2, Table 11.1). */
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/** Adam7 passes: x0, y0, dx, dy (PNG spec 8.2). */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

interface Ihdr {
  width: number;
  height: number;
  depth: number;
  colourType: number;
  interlaced: boolean;
}

interface Chunks {
  ihdr: Ihdr;
  palette: Uint8Array | null;
  trns: Uint8Array | null;
  /** The IDAT chunks' data, in order (views of the file). */
  idat: Uint8Array[];
}

function readChunks(b: Uint8Array): Chunks {
  if (b.length < 33 || u32(b, 0) !== 0x89504e47 || u32(b, 4) !== 0x0d0a1a0a) throw new Error("not a PNG file");
  let ihdr: Ihdr | null = null;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  for (let i = 8; i + 8 <= b.length; ) {
    const len = u32(b, i);
    const type = String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
    // A chunk cut short by the end of the file keeps what it has: the inflate step reports a
    // truncated image by row, which is the better message.
    const data = b.subarray(i + 8, Math.min(b.length, i + 8 + len));
    if (type === "IHDR") {
      if (data.length < 13) throw new Error("IHDR is too short");
      ihdr = { width: u32(data, 0), height: u32(data, 4), depth: data[8], colourType: data[9], interlaced: data[12] === 1 };
      if (data[10] !== 0 || data[11] !== 0 || data[12] > 1) throw new Error("unknown compression, filter or interlace method");
    } else if (type === "PLTE") palette = data;
    else if (type === "tRNS") trns = data;
    else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    i += 12 + len;
  }
  if (!ihdr) throw new Error("no IHDR chunk");
  const { width, height, depth, colourType } = ihdr;
  if (!CHANNELS[colourType] || !DEPTHS[colourType].includes(depth)) throw new Error(`invalid colour type ${colourType} at bit depth ${depth}`);
  if (width === 0 || height === 0) throw new Error("zero width or height");
  if (colourType === 3 && !palette) throw new Error("palette image without PLTE");
  if (idat.length === 0) throw new Error("no image data (IDAT)");
  return { ihdr, palette, trns, idat };
}

/**
 * Turns unfiltered rows of `count` pixels into RGBA at `out[o]`, `out[o + step]`, ...: every
 * colour type and depth to 8 bits per channel (16-bit samples keep their high byte; low-depth
 * grey is scaled to 0-255), tRNS applied (spec 11.3.2.1).
 */
function expander(c: Chunks): (row: Uint8Array, count: number, out: Uint8Array, o: number, step: number) => void {
  const { depth, colourType } = c.ihdr;
  const ch = CHANNELS[colourType];
  const pal = c.palette;
  const trns = c.trns;
  if (colourType === 3) {
    const entries = pal!.length / 3;
    // Alpha per palette entry; entries past tRNS's end are opaque. An index past the palette
    // (invalid per spec 11.2.3) shows as opaque black, as libpng does.
    const lut = new Uint8Array(256 * 4);
    for (let k = 0; k < 256; k++) {
      if (k < entries) lut.set([pal![k * 3], pal![k * 3 + 1], pal![k * 3 + 2]], k * 4);
      lut[k * 4 + 3] = trns && k < trns.length ? trns[k] : 255;
    }
    return (row, count, out, o, step) => {
      for (let x = 0; x < count; x++, o += step) {
        const bit = x * depth;
        const idx = depth === 8 ? row[x] : (row[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
        out[o] = lut[idx * 4];
        out[o + 1] = lut[idx * 4 + 1];
        out[o + 2] = lut[idx * 4 + 2];
        out[o + 3] = lut[idx * 4 + 3];
      }
    };
  }
  if (colourType === 0) {
    const max = (1 << depth) - 1;
    const key = trns && trns.length >= 2 ? (trns[0] << 8) | trns[1] : -1;
    return (row, count, out, o, step) => {
      for (let x = 0; x < count; x++, o += step) {
        let v: number;
        let g: number;
        if (depth === 16) {
          v = (row[x * 2] << 8) | row[x * 2 + 1];
          g = row[x * 2];
        } else if (depth === 8) {
          v = g = row[x];
        } else {
          const bit = x * depth;
          v = (row[bit >> 3] >> (8 - depth - (bit & 7))) & max;
          g = Math.round((v * 255) / max);
        }
        out[o] = out[o + 1] = out[o + 2] = g;
        out[o + 3] = v === key ? 0 : 255;
      }
    };
  }
  const bytes = depth / 8;
  const hasAlpha = colourType === 4 || colourType === 6;
  // The common photo layouts, without per-sample dispatch.
  if (depth === 8 && colourType === 6) {
    return (row, count, out, o, step) => {
      if (step === 4) out.set(row.subarray(0, count * 4), o);
      else for (let x = 0; x < count; x++, o += step) out.set(row.subarray(x * 4, x * 4 + 4), o);
    };
  }
  if (depth === 8 && colourType === 2 && !(trns && trns.length >= 6)) {
    return (row, count, out, o, step) => {
      for (let x = 0, p = 0; x < count; x++, o += step, p += 3) {
        out[o] = row[p];
        out[o + 1] = row[p + 1];
        out[o + 2] = row[p + 2];
        out[o + 3] = 255;
      }
    };
  }
  const key = colourType === 2 && trns && trns.length >= 6 ? [(trns[0] << 8) | trns[1], (trns[2] << 8) | trns[3], (trns[4] << 8) | trns[5]] : null;
  return (row, count, out, o, step) => {
    for (let x = 0; x < count; x++, o += step) {
      const p = x * ch * bytes;
      const sample = (s: number) => (bytes === 2 ? row[p + s * 2] : row[p + s]);
      if (ch <= 2) {
        out[o] = out[o + 1] = out[o + 2] = sample(0);
      } else {
        out[o] = sample(0);
        out[o + 1] = sample(1);
        out[o + 2] = sample(2);
      }
      if (hasAlpha) out[o + 3] = sample(ch - 1);
      else if (key) {
        const full = (s: number) => (bytes === 2 ? (row[p + s * 2] << 8) | row[p + s * 2 + 1] : row[p + s]);
        out[o + 3] = full(0) === key[0] && full(1) === key[1] && full(2) === key[2] ? 0 : 255;
      } else out[o + 3] = 255;
    }
  };
}

/** Reverses one row's filter in place (PNG spec 9.2); `prev` is the previous unfiltered row or zeros. */
function unfilter(type: number, row: Uint8Array, prev: Uint8Array, bpp: number): void {
  const n = row.length;
  switch (type) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) row[i] = (row[i] + row[i - bpp]) & 255;
      return;
    case 2:
      for (let i = 0; i < n; i++) row[i] = (row[i] + prev[i]) & 255;
      return;
    case 3:
      for (let i = 0; i < n; i++) row[i] = (row[i] + (((i >= bpp ? row[i - bpp] : 0) + prev[i]) >> 1)) & 255;
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? row[i - bpp] : 0;
        const b = prev[i];
        const c = i >= bpp ? prev[i - bpp] : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        row[i] = (row[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 255;
      }
      return;
    default:
      throw new Error(`unknown row filter ${type}`);
  }
}

/**
 * Compressed bytes handed to the inflater at once. Deflate expands at most 1032:1 (RFC 1951: a
 * 258-byte match in under 2 bits), so one piece inflates to at most 8.1 MiB, however the rest
 * of the stream runs on.
 */
const PIECE_BYTES = 8192;

/**
 * The inflated image data, read in exact amounts as the rows need it. Compressed data is fed a
 * piece at a time, only while a read waits for output: the runtime's inflater turns each write
 * into output at once, whatever is read of it, so a stream that runs on past the image (a 1 MB
 * IDAT of a 1x1 PNG inflating to 1 GiB of zeros) would otherwise all be inflated and held.
 */
class Inflated {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #idat: Uint8Array[];
  #chunkIndex = 0;
  #offset = 0;
  #closed = false;
  #chunk: Uint8Array = new Uint8Array(0);
  #at = 0;
  /** Compressed bytes handed to the inflater so far. */
  fedBytes = 0;

  constructor(idat: Uint8Array[]) {
    const inflate = new DecompressionStream("deflate");
    this.#reader = inflate.readable.getReader();
    this.#writer = inflate.writable.getWriter();
    this.#idat = idat;
  }

  /** The next piece of compressed data, or null at the end. */
  #piece(): Uint8Array | null {
    while (this.#chunkIndex < this.#idat.length && this.#offset >= this.#idat[this.#chunkIndex].length) {
      this.#chunkIndex++;
      this.#offset = 0;
    }
    if (this.#chunkIndex >= this.#idat.length) return null;
    const chunk = this.#idat[this.#chunkIndex];
    const piece = chunk.subarray(this.#offset, this.#offset + PIECE_BYTES);
    this.#offset += piece.length;
    return piece;
  }

  /** The inflater's next output, feeding it pieces until it has some. */
  async #read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    const read = this.#reader.read();
    let settled = false;
    read.then(
      () => (settled = true),
      () => (settled = true),
    );
    while (!settled && !this.#closed) {
      const piece = this.#piece();
      // A damaged stream fails the reader, which reports it; the writer's own rejection says
      // the same thing and is dropped.
      if (!piece) {
        this.#closed = true;
        this.#writer.close().catch(() => {});
        break;
      }
      this.fedBytes += piece.length;
      await this.#writer.write(piece).catch(() => {});
      // Output, if the piece made any, reaches the pending read within a turn or two.
      for (let i = 0; i < 2 && !settled; i++) await new Promise((r) => setTimeout(r, 0));
    }
    return read;
  }

  /** Fills `into` completely, or throws when the stream ends first. */
  async fill(into: Uint8Array, what: () => string): Promise<void> {
    let filled = 0;
    while (filled < into.length) {
      if (this.#at === this.#chunk.length) {
        let r;
        try {
          r = await this.#read();
        } catch (e) {
          throw new Error(`image data is corrupt (${(e as Error).message}) at ${what()}`);
        }
        if (r.done) throw new Error(`image data ends before ${what()}`);
        this.#chunk = r.value;
        this.#at = 0;
      }
      const n = Math.min(into.length - filled, this.#chunk.length - this.#at);
      into.set(this.#chunk.subarray(this.#at, this.#at + n), filled);
      filled += n;
      this.#at += n;
    }
  }

  /** Stops inflating (trailing data after the last row is ignored, as libpng does). */
  close(): void {
    this.#reader.cancel().catch(() => {});
  }

  get bufferedBytes(): number {
    return this.#chunk.length;
  }
}

/** The current row and the one before it (filters refer to it), swapped instead of copied. */
class RowPair {
  #bufs: [Uint8Array, Uint8Array];
  #i = 0;
  constructor(rowBytes: number) {
    // The row before the first is all zeros (spec 9.2); each buffer has its filter-type byte first.
    this.#bufs = [new Uint8Array(1 + rowBytes), new Uint8Array(1 + rowBytes)];
  }

  /** Reads and unfilters the next row; the view is valid until the call after next. */
  async next(data: Inflated, bpp: number, what: () => string): Promise<Uint8Array> {
    const cur = this.#bufs[this.#i];
    const prev = this.#bufs[1 - this.#i].subarray(1);
    await data.fill(cur, what);
    const row = cur.subarray(1);
    unfilter(cur[0], row, prev, bpp);
    this.#i = 1 - this.#i;
    return row;
  }

  get bytes(): number {
    return 2 * this.#bufs[0].byteLength;
  }
}

/** Opens a PNG for reading by bands of rows. Throws on a damaged structure before any row. */
export function openPng(bytes: ArrayBuffer): RowDecoder & { readonly compressedBytesRead: number } {
  const chunks = readChunks(new Uint8Array(bytes));
  const { width, height, depth, colourType, interlaced } = chunks.ihdr;
  const ch = CHANNELS[colourType];
  const bpp = Math.max(1, (ch * depth) >> 3);
  const rowBytes = (w: number) => Math.ceil((w * ch * depth) / 8);
  const expand = expander(chunks);
  const data = new Inflated(chunks.idat);
  let y = 0;

  // Adam7: the whole image, filled pass by pass, then handed over band by band.
  let whole: Uint8Array | null = null;
  const assemble = async () => {
    const img = new Uint8Array(width * height * 4);
    for (const [x0, y0, dx, dy] of ADAM7) {
      const pw = Math.ceil((width - x0) / dx);
      const ph = Math.ceil((height - y0) / dy);
      // An empty pass has no rows at all, not even filter bytes (spec 8.2).
      if (pw <= 0 || ph <= 0) continue;
      const rows = new RowPair(rowBytes(pw));
      for (let r = 0; r < ph; r++) {
        const row = await rows.next(data, bpp, () => `a row of interlace pass ${x0},${y0}`);
        expand(row, pw, img, ((y0 + r * dy) * width + x0) * 4, dx * 4);
      }
    }
    return img;
  };

  const band = new Uint8Array(width * 4 * BAND_ROWS);
  const pair = new RowPair(rowBytes(width));
  let finished = false;
  return {
    width,
    height,
    async read() {
      if (finished || y >= height) {
        if (!finished) data.close();
        finished = true;
        return null;
      }
      const rows = Math.min(BAND_ROWS, height - y);
      if (interlaced) {
        whole ??= await assemble();
        const view = whole.subarray(y * width * 4, (y + rows) * width * 4);
        y += rows;
        return { data: view, rows };
      }
      for (let r = 0; r < rows; r++, y++) {
        const row = await pair.next(data, bpp, () => `row ${y} of ${height}`);
        expand(row, width, band, r * width * 4, 4);
      }
      return { data: band.subarray(0, rows * width * 4), rows };
    },
    close() {
      if (!finished) data.close();
      finished = true;
    },
    memoryBytes: 0,
    get jsBytes() {
      return band.byteLength + pair.bytes + data.bufferedBytes + (whole?.byteLength ?? 0);
    },
    /** Compressed image data handed to the inflater so far. */
    get compressedBytesRead() {
      return data.fedBytes;
    },
  };
}

/** JS memory a decode of this PNG holds at once, from its header: see `openPng`. */
export function pngDecodeBytes(width: number, height: number, interlaced: boolean): number {
  // Three rows of up to 8 bytes a pixel, the RGBA band, the inflater's window and chunks.
  const rows = 3 * 8 * width + 4 * width * BAND_ROWS + 256 * 1024;
  return rows + (interlaced ? 4 * width * height : 0);
}
