/**
 * @module codecs/rows
 * The streaming shape every codec of our own exposes (libvips' sequential access): open, read
 * bands of rows top to bottom, drop. The pipeline feeds the bands to the resampler, so a large
 * source's full-size RGBA never exists.
 */

export interface Band {
  data: Uint8Array;
  rows: number;
}

/** A decoder that gives rows of 8-bit RGBA, top to bottom. */
/** Turns `count` pixels of CMYK ink amounts (0 = none, in RGBA slots) into RGBA in place. */
export type InkConversion = (data: Uint8Array, count: number) => void;

export interface RowDecoder {
  /** Size of the rows it yields (after any shrink-on-load). */
  readonly width: number;
  readonly height: number;
  /**
   * The next band: a view valid until the next call; null at the end. A decoder that waits
   * on the runtime (PNG's inflate stream) answers with a promise.
   */
  read(): Band | null | Promise<Band | null>;
  /** Bytes of WASM memory the codec holds now. */
  readonly memoryBytes: number;
  /** JS bytes it holds besides (a band it assembles). */
  readonly jsBytes: number;
  /**
   * The decoder already applied the file's display transforms (HEIF clap/irot/imir of a single
   * coded image, which libheif will only decode transformed), so its rows are upright.
   */
  readonly oriented?: boolean;
  /** Stops early (rows below a crop are never read): releases what the decoder still holds. */
  close?(): void;
}

/**
 * An encoder that takes rows of 8-bit RGBA top to bottom, in the stored orientation of the
 * decoder's rows; it turns them to the display orientation itself. So a full-size output never
 * exists as one RGBA image either.
 */
export interface RowEncoder {
  /** Rows per `write`: exactly this many every time but the last. */
  readonly bandRows: number;
  write(rows: Uint8Array | Uint8ClampedArray, count: number): void;
  /** The finished file, copied out of codec memory. */
  finish(): ArrayBuffer;
  /** Bytes of WASM memory the codec holds now. */
  readonly memoryBytes: number;
  /** JS bytes it holds besides (its bands, what it has encoded so far). */
  readonly jsBytes: number;
}

/**
 * Bands of `bandRows` rows over a whole RGBA image already in memory (`pixels()` is asked at
 * each read: a WASM memory's buffer changes when it grows).
 */
export function bandsOf(pixels: () => Uint8Array, width: number, height: number, bandRows: number): () => Band | null {
  const stride = width * 4;
  let y = 0;
  return () => {
    if (y >= height) return null;
    const rows = Math.min(bandRows, height - y);
    const data = pixels().subarray(y * stride, (y + rows) * stride);
    y += rows;
    return { data, rows };
  };
}

/** What an encode reports of its memory (formats/spec `CodecUsage`). */
interface Usage {
  note(wasm: number, js?: number): void;
  retire(wasm: number): void;
}

/**
 * Encodes a whole RGBA image already in memory through a row encoder, a band at a time: the
 * encoders of our own builds take rows, and run in the job's shared memory (codecs/resident).
 */
export function encodeWhole(enc: RowEncoder, pixels: { data: Uint8Array | Uint8ClampedArray; width: number; height: number }, usage: Usage): ArrayBuffer {
  let out: ArrayBuffer | undefined;
  try {
    const stride = pixels.width * 4;
    for (let y = 0; y < pixels.height; y += enc.bandRows) {
      const n = Math.min(enc.bandRows, pixels.height - y);
      enc.write(pixels.data.subarray(y * stride, (y + n) * stride), n);
    }
    out = enc.finish();
    return out;
  } finally {
    usage.note(enc.memoryBytes, pixels.data.byteLength + (out?.byteLength ?? 0));
    usage.retire(enc.memoryBytes);
  }
}

/**
 * Where display pixel (x, y) comes from in a stored image of `W` x `H` under EXIF orientation
 * `o` (CIPA DC-008, tag 0x0112): 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
 * clockwise, 7 transverse, 8 rotate 270 clockwise. Affine, so it also maps points outside the
 * image (a tile's padding).
 */
export function storedPosition(o: number, W: number, H: number, x: number, y: number): [number, number] {
  switch (o) {
    case 2: return [W - 1 - x, y];
    case 3: return [W - 1 - x, H - 1 - y];
    case 4: return [x, H - 1 - y];
    case 5: return [y, x];
    case 6: return [y, H - 1 - x];
    case 7: return [W - 1 - y, H - 1 - x];
    case 8: return [W - 1 - y, x];
    default: return [x, y];
  }
}
