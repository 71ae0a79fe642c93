/**
 * @module app
 * Wires the stages into Hono routes: parse the key -> negotiate -> run the lookup chain ->
 * respond. Routes choose no formats and touch no storage directly.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { apiRoutes } from "./api/routes";
import type { JobService } from "./jobs/service";
import { demoPage } from "./demo/page";
import type { Config } from "./config";
import { runChain } from "./deliver/chain";
import { thumbhashPlaceholder } from "./deliver/placeholder";
import { isolateGate } from "./produce/admission";
import { ERROR_CACHE_CONTROL, respond } from "./deliver/respond";
import { StageTimer } from "./deliver/timing";
import { AppError, badRequest } from "./errors";
import { negotiate } from "./negotiate";
import type { VariantCache } from "./storage/cache";
import type { Storage } from "./storage/r2";
import { parseImageKey } from "./variants/key";
import { BLUR_OPTIONS, resolveOptions } from "./variants/options";
import { sizePolicy } from "./variants/policy";

export interface AppDeps {
  config: Config;
  /** Every R2 access (delivery, origin API, jobs) goes through it. */
  store: Storage;
  cache: VariantCache;
  jobs: JobService;
}

export function jsonError(err: AppError): Response {
  return new Response(JSON.stringify({ error: err.code, message: err.publicMessage, ...err.details }), {
    status: err.status,
    headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": ERROR_CACHE_CONTROL, ...err.headers },
  });
}

const log = (message: string, detail?: unknown) => console.warn(message, ...(detail === undefined ? [] : [detail]));

/** What a page's script may read of an image response besides the CORS-safelisted headers. */
const EXPOSED_HEADERS = ["Content-Length", "ETag", "Server-Timing", "X-Image-Source", "X-Image-Tried", "X-Image-Peak-Memory", "X-Image-Quality"];

export function createApp({ config, store, cache, jobs }: AppDeps): Hono {
  const app = new Hono();
  const checkSize = sizePolicy(config);

  app.onError((err) => {
    if (err instanceof AppError) return jsonError(err);
    // Internal detail goes to the log only; the client learns that it was our fault.
    console.error("unhandled error", err);
    return jsonError(new AppError(500, "internal", "The image service failed on this request."));
  });
  app.notFound(() => jsonError(new AppError(404, "not_found", "No such route.")));

  // Images are public: any page (or those of CORS_ORIGIN) may fetch them or draw them on a
  // canvas (CORS, WHATWG Fetch 3.2), and a preflight OPTIONS is answered. Not the push API: its bearer tokens belong to
  // origins' servers, never to browsers.
  const imageCors = cors({ origin: config.corsOrigin, allowMethods: ["GET", "HEAD"], exposeHeaders: EXPOSED_HEADERS, maxAge: 86400 });
  app.use("*", (c, next) => (c.req.path === "/_api" || c.req.path.startsWith("/_api/") ? next() : imageCors(c, next)));

  // Reserved for the origin API: never served as an image, whatever R2 holds.
  app.route("/_api", apiRoutes({ config, store, cache, jobs }));

  app.get("/", (c) => c.json({ service: "edge-image-cdn", usage: "GET /<key>?caplist=avif,webp,jpg", ...(config.demoPage ? { playground: "/_demo" } : {}) }));

  // The playground; off unless DEMO_PAGE=on (dev), so production exposes nothing extra.
  app.get("/_demo", async (c) => {
    if (!config.demoPage) throw new AppError(404, "not_found", "No such route.");
    const key = c.req.query("key") || "samples/parrots.png";
    c.header("Cache-Control", "no-store");
    // A key with no image behind it shows how to push one, not a wall of 404 tiles.
    let exists = false;
    try {
      const parsed = parseImageKey(key, config.maxDimension);
      exists = (await store.findOriginal(parsed.stem, `${parsed.stem}.${parsed.extension}`)) !== null;
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
    }
    return c.html(demoPage(key, c.req.query("caplist") ?? "", { exists, origin: new URL(c.req.url).origin }));
  });

  // Hono answers HEAD with this GET handler and drops the body, keeping every header.
  app.get("/*", async (c) => {
    const url = new URL(c.req.url);
    let key: string;
    try {
      key = decodeURIComponent(url.pathname.slice(1));
    } catch {
      throw badRequest("bad_key", "The image key has malformed percent-encoding.");
    }
    let path = parseImageKey(key, config.maxDimension);
    const header = (name: string) => c.req.header(name) ?? null;
    let params = url.searchParams;
    const placeholder = params.get("placeholder");
    if (placeholder !== null) {
      // A placeholder is of the image, not of a variant: it takes no other option.
      const others = [...params.keys()].filter((k) => !["placeholder", "caplist", "v"].includes(k));
      if (!["thumbhash", "blur"].includes(placeholder) || params.getAll("placeholder").length > 1) throw badRequest("bad_option", `placeholder must be "thumbhash" or "blur"; got "${placeholder}".`);
      if (others.length) throw badRequest("bad_option", `placeholder takes no other option (got ${others.join(", ")}).`);
      path = { ...path, size: null };
      if (placeholder === "thumbhash") {
        const timer = new StageTimer();
        const made = await thumbhashPlaceholder(path, url.origin, { config, store, cache, gate: isolateGate(config.memoryBudgetBytes, config.memoryReleaseMs), timer, background: (task) => c.executionCtx.waitUntil(task) });
        return new Response(made.body, {
          status: 200,
          headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": config.cacheControl, ETag: made.etag, "X-Image-Source": made.cached ? "cache" : "transcode", "Server-Timing": timer.header() },
        });
      }
      params = new URLSearchParams([...[...params].filter(([k]) => k !== "placeholder"), ...Object.entries(BLUR_OPTIONS)]);
    }
    const resolved = resolveOptions(path, params, { dpr: header("Sec-CH-DPR"), width: header("Sec-CH-Width"), viewportWidth: header("Sec-CH-Viewport-Width"), saveData: header("Save-Data") }, {
      maxDimension: config.maxDimension,
      qualityLevel: config.qualityLevel,
      background: config.flattenBackground,
    });
    // The policy judges the variant the URL names (its options included: a signature covers
    // them, so a signed URL cannot be re-sized by editing its query); hints only scale it.
    const signed = placeholder === null && resolved.signedSize && (resolved.signedSize.width || resolved.signedSize.height) ? resolved.signedSize : null;
    await checkSize(resolved.signedPath, signed, url.searchParams.get("sig"));
    const request = resolved.request;
    const caplists = url.searchParams.getAll("caplist");
    const accept = c.req.header("Accept") ?? null;
    let negotiation;
    try {
      if (resolved.format) {
        // `format=`: that format, inside the caplist's rules when there is one.
        const listed = caplists.length ? negotiate({ caplist: caplists.join(","), accept: null, urlFormat: request.format }, config.priority).candidates : null;
        if (listed && !listed.includes(resolved.format)) throw new AppError(406, "not_acceptable", `format=${resolved.format} is not in the caplist.`);
        if (!config.priority.includes(resolved.format)) throw new AppError(406, "not_acceptable", `${resolved.format} is not served here (FORMAT_PRIORITY).`);
        negotiation = { candidates: [resolved.format], byAccept: false };
      } else {
        negotiation = negotiate({ caplist: caplists.length ? caplists.join(",") : null, accept, urlFormat: request.format }, config.priority);
      }
    } catch (e) {
      if (e instanceof AppError && caplists.length === 0 && !resolved.format) {
        throw new AppError(e.status, e.code, e.publicMessage, e.details, { Vary: "Accept" });
      }
      throw e;
    }
    const timer = new StageTimer();
    const result = await runChain(request, negotiation.candidates, url.origin, {
      config,
      store,
      cache,
      timer,
      background: (task) => c.executionCtx.waitUntil(task),
      // One job per variant and source version: concurrent requests do not queue it twice.
      defer: async (outputKey, sourceKey, sourceEtag) => {
        const msg_id = `deferred:${outputKey}@${sourceEtag.replace(/"/g, "")}`;
        await jobs.submit({ msg_id, cmd: "transcode", input_files: [{ key: sourceKey }], output_files: [{ key: outputKey }] }, url.origin);
      },
      reencode: (key) => jobs.requestReencode(key, url.origin),
      log,
      gate: isolateGate(config.memoryBudgetBytes, config.memoryReleaseMs),
    });
    return respond(config, {
      result,
      byAccept: negotiation.byAccept,
      vary: resolved.vary,
      ifNoneMatch: c.req.header("If-None-Match") ?? null,
      serverTiming: timer.header(),
    });
  });

  app.all("*", () => {
    throw new AppError(405, "method_not_allowed", "Only GET and HEAD are served here.");
  });

  return app;
}
