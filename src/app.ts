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
import { isolateGate } from "./produce/admission";
import { ERROR_CACHE_CONTROL, respond } from "./deliver/respond";
import { StageTimer } from "./deliver/timing";
import { AppError, badRequest } from "./errors";
import { negotiate } from "./negotiate";
import type { VariantCache } from "./storage/cache";
import type { Storage } from "./storage/r2";
import { parseImageKey } from "./variants/key";
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

/** The query options an image URL may carry; anything else is a 400 (`unknown_option`). */
const QUERY_OPTIONS = ["caplist", "sig", "v"];
/** What a page's script may read of an image response besides the CORS-safelisted headers. */
const EXPOSED_HEADERS = ["Content-Length", "ETag", "Server-Timing", "X-Image-Source", "X-Image-Tried", "X-Image-Peak-Memory"];

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

  // Images are public: any page may fetch them or draw them on a canvas (CORS, WHATWG Fetch
  // 3.2), and a preflight OPTIONS is answered. Not the push API: its bearer tokens belong to
  // origins' servers, never to browsers.
  const imageCors = cors({ origin: "*", allowMethods: ["GET", "HEAD"], exposeHeaders: EXPOSED_HEADERS, maxAge: 86400 });
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
    // An option this service does not take would be ignored without a word, and the client
    // sent the original's megabytes where it meant a thumbnail (`?w=300`, a habit from other
    // image services): it is a 400 naming the options there are.
    for (const name of new Set(url.searchParams.keys())) {
      if (!QUERY_OPTIONS.includes(name)) {
        throw badRequest("unknown_option", `Unknown query option "${name}". This service takes ${QUERY_OPTIONS.map((o) => `"${o}"`).join(", ")} (caplist: the formats the client decodes; sig: a URL signature; v: ignored, for cache busting); a size goes in the path, as in /covers/a1_300_0.jpg.`);
      }
    }
    const request = parseImageKey(key, config.maxDimension);
    await checkSize(`/${key}`, request.size, url.searchParams.get("sig"));
    const caplists = url.searchParams.getAll("caplist");
    const accept = c.req.header("Accept") ?? null;
    let negotiation;
    try {
      negotiation = negotiate({ caplist: caplists.length ? caplists.join(",") : null, accept, urlFormat: request.format }, config.priority);
    } catch (e) {
      if (e instanceof AppError && caplists.length === 0) {
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
      ifNoneMatch: c.req.header("If-None-Match") ?? null,
      serverTiming: timer.header(),
    });
  });

  app.all("*", () => {
    throw new AppError(405, "method_not_allowed", "Only GET and HEAD are served here.");
  });

  return app;
}
