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
    // Most test files wait on subprocesses (git, bwrap, agent CLIs, gates) far more than they
    // compute, so more files than cores run at once; vitest's default (cores - 1) runs one file at
    // a time on a 2-core machine.
    maxWorkers: Math.max(4, availableParallelism() * 2),
  },
});
