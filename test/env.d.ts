// The bindings the tests see through `cloudflare:test`'s env: the Worker's own Env.
import type { Env as WorkerEnv } from "../src/index";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
  }
}
