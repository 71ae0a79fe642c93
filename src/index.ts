/**
 * @module index
 * The Worker entry. Builds the config and the app once per isolate, on the first request, so a
 * bad `[vars]` value fails loudly there with a message naming it.
 */
import type { Hono } from "hono";
import { createApp, jsonError } from "./app";
import { loadConfig, type ConfigVars } from "./config";
import { AppError, ConfigError } from "./errors";
import { edgeCache } from "./storage/cache";
import { r2Store } from "./storage/r2";

export interface Env extends ConfigVars {
  IMAGES: R2Bucket;
}

let built: { env: Env; app: Hono } | undefined;

function appFor(env: Env): Hono {
  if (built?.env !== env) {
    const config = loadConfig(env);
    built = { env, app: createApp({
        config,
        store: r2Store(env.IMAGES),
        cache: edgeCache(caches.default, config.edgeTtl),
        bucket: env.IMAGES,
      }) };
  }
  return built.app;
}

export default {
  fetch(request, env, ctx) {
    let app: Hono;
    try {
      app = appFor(env);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      console.error(`invalid configuration: ${e.message}`);
      return jsonError(new AppError(500, "config_invalid", `Invalid configuration: ${e.message}`));
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
