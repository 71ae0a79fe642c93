/**
 * @module formats/id
 * The formats the registry knows (formats/index), by canonical extension: the one name every
 * module uses for a format. Apart, so the header probe and the format spec share it.
 */
export type FormatId = "avif" | "heic" | "webp" | "jpg" | "png" | "gif";
