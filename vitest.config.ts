import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      // The worker's own wrangler.toml: same bindings, vars and `.wasm?module` rules as dev.
      wrangler: { configPath: "./wrangler.toml" },
      // The secret `wrangler secret put API_TOKENS` sets in production; two, to test rotation.
      // Callback retries wait 1 s, 2 s, ... instead of production's 5 s, 10 s, ...
      miniflare: { bindings: { API_TOKENS: "test-token-0123456789abcdef,rotated-token-fedcba9876543210", CALLBACK_RETRY_BASE_SECONDS: "1" } },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // WASM encodes (AVIF above all) take seconds on a 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
