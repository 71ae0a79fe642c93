/**
 * The files the workerd suite uses. Real files ship with the repo (`samples/`, `test/fixtures/`,
 * sources and licences beside them); the rest are generated in Node before the suite
 * (`test/generate.ts`). Nothing here reads `../shared`: `npm test` passes on a bare clone.
 */

/** Real files, by path from the repo root. */
export const FILES = {
  kodim23Png: "samples/parrots.png",
  /** 1944x2592 progressive camera JPEG. */
  cameraJpeg: "samples/street.jpg",
  /** iPhone XS HEIC: a 4032x3024 grid of 48 HEVC tiles. */
  pug: "samples/pug.heic",
  /** 452x462 single HEVC image with an odd clean aperture (451x461): libheif decodes it transformed. */
  rainbowHeic: "test/fixtures/rainbow-451x461.heic",
  /** 4032x3024 grid of 512x512 tiles with irot (displayed 3024x4032), like a portrait iPhone photo. */
  arrowHeic: "test/fixtures/arrow.heic",
  foxAvif: "test/fixtures/fox.profile0.8bpc.yuv420.avif",
  corruptHeaderJpeg: "test/fixtures/corrupt-header.jpg",
  lottapixelJpeg: "test/fixtures/lottapixel.jpg",
  corruptedHeic: "test/fixtures/corrupted.heic",
  truncatedHeic: "test/fixtures/truncated.heic",
  hopperPng: "test/fixtures/hopper.png",
  ...Object.fromEntries([2, 3, 4, 5, 6, 7, 8].map((n) => [`hopperWebp${n}`, `test/fixtures/hopper_orientation_${n}.webp`])),
  kimonoJpeg: "test/fixtures/kimono.jpg",
  kimonoAvif: "test/fixtures/kimono.avif",
  kimonoRotate90: "test/fixtures/kimono.rotate90.avif",
  kimonoRotate270: "test/fixtures/kimono.rotate270.avif",
  kimonoMirrorH: "test/fixtures/kimono.mirror-horizontal.avif",
  kimonoMirrorV: "test/fixtures/kimono.mirror-vertical.avif",
  kimonoMirrorVRotate270: "test/fixtures/kimono.mirror-vertical.rotate270.avif",
  /** AV1 image sequences (animated AVIF): 150x150, 5 frames, plays once; with an alpha track and looping forever; with a depth (not alpha) track. */
  colorsAnimated: "test/fixtures/colors-animated-8bpc.avif",
  colorsAnimatedAlpha: "test/fixtures/colors-animated-8bpc-alpha-exif-xmp.avif",
  colorsAnimatedDepth: "test/fixtures/colors-animated-8bpc-depth-exif-xmp.avif",
  /** The same with an audio track (MP4Box): libavif 0.11 (@jsquash) makes no still of it. */
  colorsAnimatedAudio: "test/fixtures/colors-animated-8bpc-audio.avif",
  /** 12 bits per sample, colour and alpha tracks, key frames 0, 2 and 3, unspecified matrix. */
  colorsAnimated12: "test/fixtures/colors-animated-12bpc-keyframes-0-2-3.avif",
  /** link-u's animated star with alpha, no edit list, another encoder than libavif. */
  starAvifs: "test/fixtures/star-8bpc-with-alpha.avifs",
} as Record<string, string>;

/**
 * Generated files (see `test/generate.ts`): `photo12mp` (3024x4032 progressive JPEG),
 * `giantJpeg` (a small JPEG whose SOF says 20000x14000), `landscape1..8` and `portrait1..8`
 * (the same picture stored turned, with EXIF orientation 1-8).
 */
export type FixtureName = string;

declare module "vitest" {
  export interface ProvidedContext {
    /** Base64 file contents by fixture name. */
    fixtures: Record<FixtureName, string>;
    /** Loopback callback receiver: POST /cb/<tag> records, GET /received/<tag> lists. */
    callbackUrl: string;
    /** Loopback stand-in for an origin web server (ORIGIN_URL): PUT /files/<path> sets, GET /files/<path> answers, GET /count/<path> counts. */
    originUrl: string;
  }
}
