import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/** The pool's settings, shared with `vitest.corpus.config.ts`. */
export const worker = cloudflareTest({
  // The worker's own wrangler.toml: same bindings, vars and `.wasm?module` rules as dev.
  wrangler: { configPath: "./wrangler.toml" },
  // The secret `wrangler secret put API_TOKENS` sets in production; two, to test rotation.
  // Callback retries wait 1 s, 2 s, ... up to 4 attempts instead of production's 5 s, 10 s, ...
  // up to 6; the callback
  // receiver of the tests is on loopback, which production refuses. Views are not counted toward
  // the slow re-encode (test/reencode.test.ts turns it on for its own requests), so no other
  // test's stored AVIF changes behind its back.
  miniflare: {
    bindings: {
      API_TOKENS: "test-token-0123456789abcdef,rotated-token-fedcba9876543210",
      CALLBACK_RETRY_BASE_SECONDS: "1",
      CALLBACK_MAX_ATTEMPTS: "4",
      CALLBACK_PRIVATE_HOSTS: "on",
      REENCODE_MIN_REQUESTS: "1000000",
    },
  },
});

// `npm test`: everything it needs is in the repo or generated (test/fixtures.ts). The sweep
// over ../shared/corpora is `npm run test:corpus` (vitest.corpus.config.ts).
export default defineConfig({
  plugins: [worker],
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/corpus/**", "**/node_modules/**"],
    globalSetup: ["test/global-setup.ts"],
    // WASM encodes (AVIF above all) take seconds on a 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
