/**
 * @module formats
 * The format registry (imgproxy's `imagetype`): one module per format (formats/<name>.ts) holds
 * everything about it (spec, magic bytes, header probe, codecs, cost model), and this list is
 * the only place that names them. Nothing else switches on format names.
 */
import { avif } from "./avif";
import { gif } from "./gif";
import { heic } from "./heic";
import { jpeg } from "./jpeg";
import { png } from "./png";
import type { FormatId, FormatSpec } from "./spec";
import { webp } from "./webp";

export type { FormatId, FormatSpec } from "./spec";

const SPECS: readonly FormatSpec[] = [avif, heic, webp, jpeg, png, gif];

const byId = new Map<string, FormatSpec>(SPECS.map((s) => [s.id, s]));
const byExtension = new Map<string, FormatSpec>(SPECS.flatMap((s) => s.extensions.map((e) => [e, s] as const)));

export const ALL_FORMATS: readonly FormatId[] = SPECS.map((s) => s.id);

export function formatSpec(id: FormatId): FormatSpec {
  return byId.get(id)!;
}

/** Case-insensitive; accepts aliases (`jpeg`, `heif`). */
export function formatFromExtension(ext: string): FormatSpec | undefined {
  return byExtension.get(ext.toLowerCase());
}

/** Formats are named in caplists and config the same way as extensions. */
export const formatFromToken = formatFromExtension;

export function canonicalExtension(id: FormatId): string {
  return formatSpec(id).extensions[0];
}

/** Decides the format from magic bytes alone. */
export function sniffFormat(b: Uint8Array): FormatId | null {
  return SPECS.find((s) => s.sniff(b))?.id ?? null;
}
