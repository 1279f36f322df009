import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/build-dist.ts"],
    // Safety nets only, never a speed check: whole-line tests on a busy 2-core machine take minutes.
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: "forks",
    // A whole-line test keeps under one core busy (it waits on git, bwrap, gates and agent CLIs),
    // so one more file than cores runs at once; vitest's default (cores - 1) ran one file at a
    // time on a 2-core machine.
    maxWorkers: availableParallelism() + 1,
  },
});
