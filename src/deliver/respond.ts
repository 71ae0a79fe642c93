/**
 * @module deliver/respond
 * Turns a chain result into an HTTP response: validators, 304, caching headers, Vary and the
 * diagnostic headers. Chooses no formats.
 */
import type { Config } from "../config";
import { formatSpec } from "../formats";
import { TEMPORARY_VERDICTS } from "../produce/pipeline";
import type { ChainResult, Verdict } from "./chain";

/** Errors are never cached long: a fixed file must show up at once. */
export const ERROR_CACHE_CONTROL = "no-store";

/** Seconds a client should wait before asking again for a variant being produced (RFC 9110 10.2.3). */
export const RETRY_AFTER_SECONDS = 10;

export interface RespondInput {
  result: ChainResult;
  byAccept: boolean;
  /** Request headers besides Accept the variant depended on (variants/options: Client Hints, Save-Data). */
  vary?: readonly string[];
  ifNoneMatch: string | null;
  serverTiming: string;
}

export function triedHeader(tried: Verdict[]): string {
  return tried.map((t) => `${t.format}=${t.verdict}`).join(",");
}

/**
 * The Client Hints a page's browser should send with its image requests (RFC 8942; sent on
 * every response, as browsers take them from subresources' origins too once opted in).
 */
export const ACCEPT_CH = "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width";

export function respond(config: Config, { result, byAccept, vary = [], ifNoneMatch, serverTiming }: RespondInput): Response {
  const headers = new Headers({ "X-Image-Tried": triedHeader(result.tried), "Server-Timing": serverTiming });
  // RFC 9110 12.5.5: a response chosen by Accept must say so, 304s and 404s included, or a
  // shared cache may hand a Chrome AVIF to Safari 15.
  // The hints a variant depended on are named too, so a cache keys on them (RFC 8942 2.2).
  const varied = [...(byAccept ? ["Accept"] : []), ...vary];
  if (varied.length) headers.set("Vary", varied.join(", "));
  headers.set("Accept-CH", ACCEPT_CH);
  // Any page may read this response's Server-Timing (W3C Resource Timing, Timing-Allow-Origin).
  headers.set("Timing-Allow-Origin", "*");
  const d = result.delivery;
  if (!d) {
    headers.set("Cache-Control", ERROR_CACHE_CONTROL);
    headers.set("Content-Type", "application/json; charset=utf-8");
    // 404 only when every candidate failed for good; "not now" is a 503 the client retries.
    if (result.tried.some((t) => TEMPORARY_VERDICTS.has(t.verdict))) {
      headers.set("Retry-After", String(RETRY_AFTER_SECONDS));
      const body = { error: "temporarily_unavailable", message: "The image is being produced or storage is unavailable; try again shortly.", candidates: result.tried };
      return new Response(JSON.stringify(body), { status: 503, headers });
    }
    // The pull-through origin has a file under this name, but it is no image we take (an HTML
    // error page, a file over the upload limits): a 422 that says so, not a 404 hiding it.
    if (result.tried.some((t) => t.verdict === "origin-rejected")) {
      const body = { error: "origin_not_image", message: "The origin's file for this image is not an image this service accepts (see ORIGIN_URL in the docs: magic bytes, header and upload limits).", candidates: result.tried };
      return new Response(JSON.stringify(body), { status: 422, headers });
    }
    const body = {
      error: "not_found",
      message: "No candidate format could be served for this image.",
      candidates: result.tried,
    };
    return new Response(JSON.stringify(body), { status: 404, headers });
  }
  headers.set("ETag", d.etag);
  headers.set("Cache-Control", config.cacheControl);
  headers.set("X-Image-Source", d.source);
  if (config.exposePeakMemory && d.peakBytes !== undefined) headers.set("X-Image-Peak-Memory", String(d.peakBytes));
  if (config.exposePeakMemory && d.quality !== undefined) headers.set("X-Image-Quality", d.quality);
  if (ifNoneMatch !== null && etagMatches(ifNoneMatch, d.etag)) {
    if (d.body instanceof ReadableStream) void d.body.cancel();
    return new Response(null, { status: 304, headers });
  }
  headers.set("Content-Type", formatSpec(d.format).mime);
  headers.set("Content-Length", String(d.size));
  headers.set("X-Content-Type-Options", "nosniff");
  return new Response(d.body, { status: 200, headers });
}

/** RFC 9110 13.1.2: If-None-Match uses the weak comparison, and `*` matches any current entity. */
export function etagMatches(header: string, etag: string): boolean {
  const strip = (t: string) => t.trim().replace(/^W\//, "");
  const ours = strip(etag);
  return header.split(",").some((t) => t.trim() === "*" || strip(t) === ours);
}
