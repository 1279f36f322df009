import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/build-dist.ts"],
    // Safety nets only, never a speed check: whole-line tests on a busy 2-core machine take minutes.
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
