/** Real corpus files the tests use, relative to `../shared/corpora`. */
export const FIXTURES: Record<string, string> = {
  kodim23Png: "photos/kodak/kodim23.png",
  cameraJpeg: "photos/unsplash/mike-castro-demaria-94BUerwdFP8-unsplash.jpg",
  exampleHeic: "heic/libheif/example.heic",
  foxAvif: "avif/link-u-avif-sample-images/fox.profile0.8bpc.yuv420.avif",
  giantJpeg: "sharp-fixtures/giant-image.jpg",
  corruptHeaderJpeg: "sharp-fixtures/corrupt-header.jpg",
  lottapixelJpeg: "hostile/fuzzdb-malicious-images/lottapixel.jpg",
  /** 3024x4032 (12.2 MP) progressive camera JPEG, portrait. */
  photo12mp: "photos/unsplash/fatih-kgqu_qs3B78-unsplash.jpg",
  ...Object.fromEntries(
    [1, 2, 3, 4, 5, 6, 7, 8].flatMap((n) => [
      [`landscape${n}`, `jpeg/exif-orientation-examples/Landscape_${n}.jpg`],
      [`portrait${n}`, `jpeg/exif-orientation-examples/Portrait_${n}.jpg`],
    ]),
  ),
  /** iPhone XS HEIC: a 4032x3024 grid of 48 HEVC tiles. */
  pug: "heic/pillow_heif-iphone/PUG1.HEIC",
  corruptedHeic: "heic/pillow_heif-tests/heif_corrupted/corrupted.heic",
  truncatedHeic: "heic/pillow_heif-tests/heif_truncated/truncated.heic",
  hopperPng: "pillow-testimages/hopper.png",
  ...Object.fromEntries([2, 3, 4, 5, 6, 7, 8].map((n) => [`hopperWebp${n}`, `pillow-testimages/hopper_orientation_${n}.webp`])),
  kimonoPng: "avif/link-u-avif-sample-images/kimono.png",
  kimonoAvif: "avif/link-u-avif-sample-images/kimono.avif",
  kimonoRotate90: "avif/link-u-avif-sample-images/kimono.rotate90.avif",
  kimonoRotate270: "avif/link-u-avif-sample-images/kimono.rotate270.avif",
  kimonoMirrorH: "avif/link-u-avif-sample-images/kimono.mirror-horizontal.avif",
  kimonoMirrorV: "avif/link-u-avif-sample-images/kimono.mirror-vertical.avif",
  kimonoMirrorVRotate270: "avif/link-u-avif-sample-images/kimono.mirror-vertical.rotate270.avif",
} as Record<string, string>;

export type FixtureName = string;

/** Files per corpus set that the corpus test pushes and requests. */
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
    /** Base64 file contents by fixture name. */
    fixtures: Record<FixtureName, string>;
    corpus: CorpusFile[];
    /** Loopback server of the global setup that serves the sampled corpus files by path. */
    corpusUrl: string;
    /** Loopback callback receiver: POST /cb/<tag> records, GET /received/<tag> lists. */
    callbackUrl: string;
  }
}
