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
