/**
 * @module index
 * The Worker entry: HTTP requests and the job queue's batches. Builds the config, the app and
 * the job service once per isolate, on first use, so a bad `[vars]` value fails loudly there
 * with a message naming it.
 */
import type { Hono } from "hono";
import { createApp, jsonError } from "./app";
import { loadConfig, type ConfigVars } from "./config";
import { AppError, ConfigError } from "./errors";
import type { JobMessage } from "./jobs/model";
import { jobService, type JobService } from "./jobs/service";
import { edgeCache } from "./storage/cache";
import { pullThrough } from "./storage/origin";
import { r2Store } from "./storage/r2";

export interface Env extends ConfigVars {
  IMAGES: R2Bucket;
  JOBS: Queue<JobMessage>;
}

const log = (message: string, detail?: unknown) => console.warn(message, ...(detail === undefined ? [] : [detail]));

let built: { env: Env; app: Hono; jobs: JobService } | undefined;

function servicesFor(env: Env): { app: Hono; jobs: JobService } {
  if (built?.env !== env) {
    const config = loadConfig(env);
    const cache = edgeCache(caches.default, config.edgeTtl);
    // The only use of the bucket binding: everything else reaches R2 through this store.
    // With ORIGIN_URL, an original missing from R2 is pulled from the origin (storage/origin).
    const r2 = r2Store(env.IMAGES);
    const store = config.origin ? pullThrough(r2, config.origin, config) : r2;
    const jobs = jobService({ config, store, cache, queue: env.JOBS, log });
    const app = createApp({ config, store, cache, jobs });
    built = { env, app, jobs };
  }
  return built;
}

export default {
  fetch(request, env, ctx) {
    let app: Hono;
    try {
      app = servicesFor(env).app;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      console.error(`invalid configuration: ${e.message}`);
      return jsonError(new AppError(500, "config_invalid", `Invalid configuration: ${e.message}`));
    }
    return app.fetch(request, env, ctx);
  },
  async queue(batch, env) {
    // A config error throws here and the queue retries the batch once the config is fixed.
    await servicesFor(env).jobs.consume(batch);
  },
} satisfies ExportedHandler<Env, JobMessage>;
