/** What the corpus sweep samples from `../shared/corpora`. */

/** Files per corpus set that the sweep pushes and requests. */
export const CORPUS_PER_SET = 10;

/** The decompression bombs of the corpus README: each must be refused without decoding. */
export const BOMBS = [
  "hostile/fuzzdb-malicious-images/lottapixel.jpg",
  "jpeg/jpeg-decoder/crashtest/max_size.jpg",
  "hostile/libvips-oss-fuzz-testcases/webpsave_buffer_fuzzer-5674696418263040",
  "sharp-fixtures/giant-image.jpg",
  "sharp-fixtures/65536-uint32-limit.png",
  "hostile/libvips-oss-fuzz-testcases/pngsave_buffer_fuzzer-5078454764044288",
];

export interface CorpusFile {
  /** The set it belongs to, e.g. `avif/link-u-avif-sample-images`. */
  set: string;
  path: string;
  /** Its real type by magic bytes, from MANIFEST.tsv. */
  kind: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    corpus: CorpusFile[];
    /** Loopback server of the corpus setup that serves the sampled files by path. */
    corpusUrl: string;
    /** Every PNG of pngsuite and png-extra (not sampled): the PNG decoder's conformance run. */
    pngFiles: string[];
    /** Every animated AVIF (major brand avis) of the corpora (not sampled): the frame decoder's run. */
    sequenceFiles: string[];
    /** JPEG and WebP files with an ICC profile (up to 4 MP); `ref/<path>` is sharp's colour-managed sRGB of each. */
    iccFiles: { path: string; ext: string }[];
  }
}
