import { defineConfig } from "vitest/config";
import { worker } from "./vitest.config";

// `npm run test:corpus`: the full sweep over ../shared/corpora; fails when they are missing.
export default defineConfig({
  plugins: [worker],
  test: {
    include: ["test/corpus/**/*.test.ts"],
    globalSetup: ["test/corpus/setup.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
