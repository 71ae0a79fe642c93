/** Real corpus files the tests use, relative to `../shared/corpora`. */
export const FIXTURES = {
  kodim23Png: "photos/kodak/kodim23.png",
  cameraJpeg: "photos/unsplash/mike-castro-demaria-94BUerwdFP8-unsplash.jpg",
  exampleHeic: "heic/libheif/example.heic",
  foxAvif: "avif/link-u-avif-sample-images/fox.profile0.8bpc.yuv420.avif",
  giantJpeg: "sharp-fixtures/giant-image.jpg",
  corruptHeaderJpeg: "sharp-fixtures/corrupt-header.jpg",
  lottapixelJpeg: "hostile/fuzzdb-malicious-images/lottapixel.jpg",
  /** 3024x4032 (12.2 MP) progressive camera JPEG, portrait. */
  photo12mp: "photos/unsplash/fatih-kgqu_qs3B78-unsplash.jpg",
} as const;

export type FixtureName = keyof typeof FIXTURES;

declare module "vitest" {
  export interface ProvidedContext {
    /** Base64 file contents by fixture name. */
    fixtures: Record<FixtureName, string>;
  }
}
