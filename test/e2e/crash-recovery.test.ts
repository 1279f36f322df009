import { type ChildProcess, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { demoOrders } from "../../src/sim/index.ts";
import { Workspaces } from "../../src/workspace/index.ts";
import { git, landedOrderTrailers, makeDemoRepo } from "../support/line.ts";

const BIN = fileURLToPath(new URL("../../bin/nightshift.js", import.meta.url));
const ORDERS = 4;

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function repoWithQueuedOrders() {
  const repo = await makeDemoRepo({ concurrency: 2, brokenRate: 0.3, seed: 3 });
  cleanups.push(repo.cleanup);
  // Slow the model down so that a kill lands while runs are in flight.
  const config = path.join(repo.dir, "nightshift.toml");
  await writeFile(
    config,
    (await readFile(config, "utf8")).replace("first_token_ms = 0", "first_token_ms = 150"),
  );
  const ledger = await openLedger({
    kind: "embedded",
    dataDir: path.join(repo.dir, ".nightshift", "ledger"),
  });
  await ledger.addOrders(
    demoOrders.slice(0, ORDERS).map((o) => ({ title: o.title, spec: o.spec, maxAttempts: 5 })),
  );
  await ledger.close();
  return repo.dir;
}

async function withLedger<T>(repo: string, fn: (ledger: Ledger) => Promise<T>): Promise<T> {
  const ledger = await openLedger({
    kind: "embedded",
    dataDir: path.join(repo, ".nightshift", "ledger"),
  });
  try {
    return await fn(ledger);
  } finally {
    await ledger.close();
  }
}

/** Model requests so far, per order. */
async function requestsPerOrder(ledger: Ledger): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (const request of await ledger.metering.listModelRequests()) {
    if (request.order_id !== null) {
      counts.set(request.order_id, (counts.get(request.order_id) ?? 0) + 1);
    }
  }
  return counts;
}

function startRun(repo: string): {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
} {
  const child = spawn(process.execPath, [BIN, "run", "--dir", repo], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => output, exit };
}

async function waitFor(read: () => string, pattern: RegExp, exit: Promise<unknown>): Promise<void> {
  // A safety net for a wedged process, not a speed check: a busy machine needs minutes.
  const deadline = Date.now() + 240_000;
  let exited = false;
  void exit.then(() => {
    exited = true;
  });
  while (!pattern.test(read())) {
    if (exited || Date.now() > deadline)
      throw new Error(`never saw ${pattern}; output:\n${read()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("a factory process killed mid-run", () => {
  it.each([
    ["killed while agents work", / agent {5}/, "SIGKILL"],
    ["killed while a candidate is in the merge queue", / merging {3}/, "SIGKILL"],
    ["stopped (SIGTERM) while a candidate is in the merge queue", / merging {3}/, "SIGTERM"],
  ] as const)("loses no order and lands none twice when %s", async (_when, killAt, signal) => {
    const repo = await repoWithQueuedOrders();
    const first = startRun(repo);
    await waitFor(first.output, killAt, first.exit);
    first.child.kill(signal);
    await first.exit;
    // The runs whose candidates were in the merge queue when the process died.
    const { queued, requestsBefore } = await withLedger(repo, async (ledger) => ({
      queued: (await ledger.listRuns()).filter(
        (r) => r.status === "running" && r.phase === "merging" && r.candidate_commit,
      ),
      requestsBefore: await requestsPerOrder(ledger),
    }));
    if (killAt.source.includes("merging")) expect(queued.length).toBeGreaterThan(0);

    const second = startRun(repo);
    const code = await second.exit;
    expect(second.output()).toContain(`orders   ${ORDERS} landed, 0 failed`);
    expect(code).toBe(0);

    const trailers = landedOrderTrailers(repo);
    expect(trailers).toHaveLength(ORDERS);
    expect(new Set(trailers).size).toBe(ORDERS);
    const ledger = await openLedger({
      kind: "embedded",
      dataDir: path.join(repo, ".nightshift", "ledger"),
    });
    try {
      const orders = await ledger.listOrders();
      expect(orders.map((o) => o.status)).toEqual(Array(ORDERS).fill("landed"));
      const runs = await ledger.listRuns();
      expect(
        runs.some(
          (r) =>
            r.status === "abandoned" ||
            r.outcome_reason?.includes("after restart") ||
            r.adoptions > 0,
        ),
      ).toBe(true);
      // Candidates that were in the merge queue were put back in it, not thrown away: each run
      // ended through the queue (none abandoned), and those that landed did so without a new
      // agent run: the order's landed run is the very run that was queued, and the gateway saw
      // no new request for the order.
      const requestsAfter = await requestsPerOrder(ledger);
      let landedAsQueued = 0;
      for (const before of queued) {
        const after = runs.find((r) => r.id === before.id);
        expect(after?.status).not.toBe("abandoned");
        if (after?.status !== "landed") continue;
        landedAsQueued += 1;
        expect(runs.filter((r) => r.order_id === before.order_id).at(-1)?.id).toBe(before.id);
        expect(requestsAfter.get(before.order_id) ?? 0).toBe(
          requestsBefore.get(before.order_id) ?? 0,
        );
      }
      if (queued.length > 0) expect(landedAsQueued).toBeGreaterThan(0);
      expect(runs.filter((r) => r.status === "running")).toEqual([]);
      expect(await ledger.listMerges()).toHaveLength(ORDERS);
      // Every landed commit the ledger knows is on main, in main's order.
      const main = git(repo, "rev-list", "--reverse", "main").split("\n");
      for (const order of orders) expect(main).toContain(order.landed_commit);
    } finally {
      await ledger.close();
    }
    // The killed process's worktrees were cleaned up; only the kept ones of failed runs remain.
    const worktrees = git(repo, "worktree", "list", "--porcelain")
      .split("\n")
      .filter((l) => l.startsWith("worktree "));
    const workspaces = new Workspaces({
      repoPath: repo,
      branch: "main",
      rootDir: path.join(repo, ".nightshift", "worktrees"),
    });
    expect(worktrees).toHaveLength(1 + (await workspaces.listKept()).length);
  });
});
