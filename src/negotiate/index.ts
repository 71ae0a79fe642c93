/**
 * @module negotiate
 * Turns what a client says it can decode (a `caplist` query or the Accept header) into the
 * ordered list of formats to try. Knows nothing of storage: the lookup chain walks the list.
 */
import { AppError, badRequest } from "../errors";
import { formatFromToken, formatSpec, type FormatId } from "../formats";
import { matchRange, parseAccept } from "./accept";

export interface Negotiation {
  /** Formats to try, best first. */
  candidates: FormatId[];
  /** True when Accept decided (or could have): the response must carry `Vary: Accept`. */
  byAccept: boolean;
}

export interface NegotiationInput {
  /** The raw `caplist` query value, or null when the query has none. */
  caplist: string | null;
  /** The Accept header, or null when absent. */
  accept: string | null;
  /** The format of the URL's own extension. */
  urlFormat: FormatId;
}

export function negotiate(input: NegotiationInput, priority: readonly FormatId[]): Negotiation {
  if (input.caplist !== null) return { candidates: fromCaplist(input.caplist, priority), byAccept: false };
  return { candidates: fromAccept(input.accept, input.urlFormat, priority), byAccept: true };
}

/** The caplist is authoritative: a format it does not list is never served. */
function fromCaplist(caplist: string, priority: readonly FormatId[]): FormatId[] {
  const listed = new Set<FormatId>();
  for (const token of caplist.split(",")) {
    const spec = formatFromToken(token.trim());
    if (spec) listed.add(spec.id);
  }
  if (listed.size === 0) {
    throw badRequest("bad_caplist", "caplist names no known format; use a comma-separated list of avif, heic, webp, jpg, png, gif.");
  }
  return priority.filter((f) => listed.has(f));
}

/**
 * Explicitly listed image types (q > 0), ordered by server priority, plus the URL's own format
 * when the client takes it even through a wildcard and it is one every client decodes (JPEG,
 * PNG). Wildcards alone never yield AVIF, HEIC or WebP: `image/*` is sent by browsers that
 * cannot decode them (Chrome's covers HEIC). A `.heic`, `.avif` or `.webp` URL matched only
 * through a wildcard gets JPEG, then PNG (for a transparent source), never its own format.
 */
function fromAccept(accept: string | null, urlFormat: FormatId, priority: readonly FormatId[]): FormatId[] {
  // okhttp, Glide and Coil send no Accept, and curl, Node's fetch and most HTTP libraries send
  // a bare `*/*`: none says anything of images, so they asked for a URL and get its format
  // (`_320_240.avif` answers AVIF). Browsers always name image types or `image/*`, so the
  // wildcard rule below still applies to them.
  if (accept === null || accept.trim() === "") return priority.filter((f) => f === urlFormat);
  const ranges = parseAccept(accept);
  if (ranges.length > 0 && ranges.every((r) => r.range === "*/*" && r.q > 0)) return priority.filter((f) => f === urlFormat);
  const url = formatSpec(urlFormat);
  const accepted = (f: FormatId) => {
    const spec = formatSpec(f);
    return matchRange(ranges, [spec.mime, ...spec.mimeAliases]);
  };
  const chosen = new Set<FormatId>();
  for (const f of priority) {
    const m = accepted(f);
    if (!m || m.q <= 0) continue;
    if (m.specificity === 3 || (f === urlFormat && url.universal)) chosen.add(f);
  }
  if (chosen.size > 0) return priority.filter((f) => chosen.has(f));
  const urlMatch = accepted(urlFormat);
  if (urlMatch && urlMatch.q <= 0 && url.universal) {
    throw new AppError(406, "not_acceptable", `The client refuses ${url.mime} and accepts no other image format served here.`);
  }
  // RFC 9110 12.5.1 lets a server disregard an Accept that matches nothing (a browser's
  // `text/html,...` on an image URL): serve the URL's own format when every client decodes it,
  // else the formats every client decodes (unless refused outright with q=0).
  if (url.universal) return priority.filter((f) => f === urlFormat);
  // (Formats made here only: GIF is only ever the original passed through, at its own URL.)
  const universal = priority.filter((f) => formatSpec(f).universal && formatSpec(f).canEncode && !(accepted(f)?.q === 0));
  if (universal.length === 0) throw new AppError(406, "not_acceptable", "The client accepts no image format served here.");
  return universal;
}
