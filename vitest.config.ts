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
    // PGlite's WebAssembly on V8's baseline compiler only, as the CLI's short-lived commands run it
    // (src/cli/main.ts): a test file is short-lived too, and the optimising compiler's background
    // work cost more CPU than it saved (test/ledger/budget-limits: 11.0 s user -> 8.6 s).
    execArgv: ["--liftoff-only"],
  },
});
