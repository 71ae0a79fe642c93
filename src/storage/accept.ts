/**
 * @module storage/accept
 * What an original must be to be stored, whoever brings it: a push (`PUT /_api/objects/...`) or
 * the pull-through origin (storage/origin). Both read the body under the same byte limit and
 * check the same facts from its header, before anything is decoded.
 */
import type { Config } from "../config";
import { AppError, badRequest } from "../errors";
import { formatSpec } from "../formats";
import { animationPixels, HeaderError, readHeader, sniffFormat, type ImageHeader } from "../headers";
import type { ImageRequestKey } from "../variants/key";

export type AcceptLimits = Pick<Config, "maxUploadBytes" | "maxUploadPixels" | "maxUploadDimension" | "maxAnimationFrames">;

/**
 * Reads a body of at most `max` bytes: refused from its declared length before reading when
 * that is too large, and while reading when it is not declared (chunked) or lies.
 */
export async function readLimited(body: ReadableStream<Uint8Array> | null, declaredLength: string | null, max: number): Promise<Uint8Array> {
  const tooLarge = () => new AppError(413, "payload_too_large", `The body exceeds ${max} bytes.`);
  if (declaredLength !== null && Number(declaredLength) > max) {
    await body?.cancel();
    throw tooLarge();
  }
  if (!body) throw badRequest("empty_body", "The body is empty: send the image bytes.");
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (total === 0) throw badRequest("empty_body", "The body is empty: send the image bytes.");
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** The bytes must be the format the extension names, with a readable, bounded header. */
export function checkImage(bytes: Uint8Array, key: ImageRequestKey, config: AcceptLimits): ImageHeader {
  const sniffed = sniffFormat(bytes);
  if (!sniffed) {
    throw new AppError(
      415,
      "unsupported_media_type",
      "The body is not an AVIF, HEIC, WebP, JPEG, PNG or GIF image. Send the image bytes as the body (curl --data-binary @photo.jpg) or as one multipart file part (curl -F file=@photo.jpg).",
    );
  }
  if (sniffed !== key.format) {
    throw new AppError(415, "format_mismatch", `The body is ${formatSpec(sniffed).mime} but the key's extension names ${formatSpec(key.format).mime}.`);
  }
  let header: ImageHeader | null;
  try {
    header = readHeader(bytes);
  } catch (e) {
    if (e instanceof HeaderError) throw new AppError(422, "bad_image", `The image header is truncated or unparseable (${e.message}).`);
    throw e;
  }
  if (!header) throw new AppError(422, "bad_image", "The image header is truncated or unparseable.");
  if (header.width > config.maxUploadDimension || header.height > config.maxUploadDimension || header.width * header.height > config.maxUploadPixels) {
    throw new AppError(
      422,
      "image_too_large",
      `${header.width}x${header.height} exceeds the limits of ${config.maxUploadDimension} per side and ${config.maxUploadPixels} pixels.`,
    );
  }
  if (!header.animated && animationPixels(header) > config.maxUploadPixels) {
    throw new AppError(422, "image_too_large", `A frame of ${animationPixels(header)} pixels exceeds the ${header.width}x${header.height} image's limit of ${config.maxUploadPixels} pixels.`);
  }
  // An animation is decoded frame by frame, each frame a canvas: refused from its header when
  // it has more frames than MAX_ANIMATION_FRAMES (a 40,000-frame GIF of 1x1 images) or more
  // pixels over all frames than an upload may have.
  if (header.animated && header.animation) {
    const { frames } = header.animation;
    if (frames > config.maxAnimationFrames) {
      throw new AppError(422, "too_many_frames", `The animation has ${frames} frames; at most ${config.maxAnimationFrames} are accepted.`);
    }
    if (animationPixels(header) > config.maxUploadPixels) {
      throw new AppError(422, "image_too_large", `The animation has ${animationPixels(header)} pixels over its ${frames} frames; at most ${config.maxUploadPixels} are accepted.`);
    }
  }
  return header;
}
