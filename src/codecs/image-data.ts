/**
 * @module codecs/image-data
 * workerd has no ImageData, but the codecs' glue constructs one for every decoded image. Only
 * the three fields they read are needed.
 */
class PlainImageData {
  readonly colorSpace = "srgb";
  constructor(
    readonly data: Uint8ClampedArray,
    readonly width: number,
    readonly height: number,
  ) {}
}

const g = globalThis as unknown as { ImageData?: unknown };
g.ImageData ??= PlainImageData;
