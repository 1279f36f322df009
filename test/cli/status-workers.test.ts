import { describe, expect, it } from "vitest";
import { renderStatus } from "../../src/cli/commands/status.ts";
import type { WorkerView } from "../../src/ledger/index.ts";

const worker = (over: Partial<WorkerView>): WorkerView => ({
  id: "host-a:100",
  host: "host-a",
  pid: 100,
  concurrency: 4,
  state: "working",
  started_at: new Date(),
  heartbeat_at: new Date(),
  stopped_at: null,
  runs: 0,
  silentSeconds: 1,
  ...over,
});

describe("nightshift status with workers", () => {
  it("shows each worker's host, pid, state, runs, last heartbeat and the merge leader", () => {
    const text = renderStatus(
      {
        orders: [],
        runs: [],
        totals: {
          orders: {
            waiting: 0,
            queued: 0,
            running: 3,
            landed: 0,
            proposed: 0,
            failed: 0,
            cancelled: 0,
          },
          runs: 3,
          inputTokens: 0,
          outputTokens: 0,
          costUsd: 0,
        },
        workers: [
          worker({ runs: 3 }),
          worker({ id: "host-b:7", host: "host-b", pid: 7, state: "draining", silentSeconds: 300 }),
          worker({ id: "old:1", host: "old", pid: 1, state: "stopped", silentSeconds: 90_000 }),
        ],
        mergeLeader: "host-a:100",
      },
      "f",
      "/repo",
      { driver: "builtin", model: "m" },
    );
    expect(text).toContain("workers (2):");
    expect(text).toMatch(
      /host-a\s+pid 100\s+working\s+3\/4 runs {2}heartbeat 1s ago {2}merge leader/,
    );
    expect(text).toMatch(/host-b\s+pid 7\s+draining\s+0\/4 runs {2}heartbeat 5m ago$/m);
    // A worker stopped long ago is history, not shown.
    expect(text).not.toContain("old");
  });
});
