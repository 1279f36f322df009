import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { WorkFinder, type WorkFinderSettings } from "../../src/orders/index.ts";

const env = { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" };
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=T", "-c", "user.email=t@example.com", ...args], {
    cwd,
    env,
    encoding: "utf8",
  }).trim();

let repo: string;
let ledger: Ledger;
let clock = 0;

async function commit(files: Record<string, string>) {
  for (const [name, content] of Object.entries(files)) {
    await writeFile(path.join(repo, name), content);
  }
  git(repo, "add", "-A");
  git(repo, "commit", "-qm", "change");
}

function finder(settings: Partial<WorkFinderSettings> = {}) {
  return new WorkFinder(
    { ledger, repoPath: repo, branch: "main", logger: pino({ level: "silent" }) },
    {
      sources: ["goals", "defects", "tests", "todo"],
      approval: true,
      maxOrdersPerRound: 20,
      intervalMs: 60_000,
      goalsFile: "GOALS.md",
      todoMarkers: ["TODO", "FIXME"],
      ...settings,
    },
    () => clock,
  );
}

beforeEach(async () => {
  repo = await mkdtemp(path.join(tmpdir(), "ns-perpetual-"));
  git(repo, "init", "-q", "-b", "main");
  await commit({
    "GOALS.md": "# Goals\n\n- Export as CSV\n- [x] Import JSON\n- [ ] Add a --verbose flag\n",
    "a.js": "// TODO: handle empty input\nexport const a = 1; // FIXME(ada) off by one\n",
    "b.js": "export const todoList = []; // nothing to do here\n",
  });
  ledger = await openLedger({ kind: "memory" });
  clock = 1_000_000;
});
afterEach(async () => {
  await ledger.close();
  await rm(repo, { recursive: true, force: true });
});

describe("the perpetual loop's work finder", () => {
  it("finds goals, defects, flaky tests and TODOs, each saying where it came from, waiting for approval", async () => {
    await ledger.raiseDefect({ kind: "meltdown", summary: "run 3 looped", evidence: { n: 1 } });
    // The test gate passed and failed on one commit: flaky.
    const [order] = await ledger.addOrders([{ title: "earlier" }]);
    const claim = await ledger.claimNext({
      workerId: "w",
      leaseMs: 60_000,
      agent: "b",
      model: "m",
    });
    for (const passed of [false, true]) {
      await ledger.recordGate({
        run_id: claim!.run.id,
        gate: "test",
        stage: "candidate",
        commit_sha: "c0ffee",
        passed,
        exit_code: passed ? 0 : 1,
        timed_out: false,
        output: passed ? "ok 1 - parses" : "not ok 1 - parses dates in time\n# fail 1",
        duration_ms: 10,
      });
    }
    await ledger.finishRun(claim!.run.id, { outcome: "failed", runStatus: "failed", reason: "x" });
    expect(order).toBeDefined();

    const added = await finder().findWork();
    expect(added.map((o) => [o.source, o.status])).toEqual([
      ["goals:GOALS.md", "waiting"],
      ["goals:GOALS.md", "waiting"],
      ["defect:D-1", "waiting"],
      ["tests:flaky:c0ffee", "waiting"],
      ["todo:a.js:1", "waiting"],
      ["todo:a.js:2", "waiting"],
    ]);
    expect(added.map((o) => o.title)).toEqual([
      "Export as CSV",
      "Add a --verbose flag",
      "Fix the cause of defect D-1: run 3 looped",
      "Make a flaky test reliable: not ok 1 - parses dates in time",
      "Resolve TODO: handle empty input (a.js)",
      "Resolve FIXME(ada) off by one (a.js)",
    ]);
    expect(added[4]).toMatchObject({ scope: ["a.js"] });
  });

  it("never turns the same TODO into an order twice, even after it was rejected or moved", async () => {
    const first = await finder({ sources: ["todo"] }).findWork();
    expect(first).toHaveLength(2);
    for (const o of first) await ledger.controls.apply("reject", o.id, "not now");

    const again = finder({ sources: ["todo"] });
    expect(await again.findWork()).toEqual([]);
    // The same notes a line further down, and one new note: only the new one is found.
    await commit({
      "a.js": "\n// TODO: handle empty input\nexport const a = 1; // FIXME(ada) off by one\n",
      "c.js": "// TODO: write c\n",
    });
    clock += 60_000;
    const added = await again.findWork();
    expect(added.map((o) => o.source)).toEqual(["todo:c.js:1"]);
  });

  it("waits while the queue has work, within its interval, and while its findings wait", async () => {
    const f = finder({ sources: ["todo"], maxOrdersPerRound: 1, approval: false });
    await ledger.addOrders([{ title: "a person's order" }]);
    expect(await f.findWork()).toEqual([]);
    const [queued] = await ledger.listOrders();
    await ledger.cancelOrder(queued!.id, "done with it");

    const first = await f.findWork();
    expect(first.map((o) => o.status)).toEqual(["queued"]);
    await ledger.cancelOrder(first[0]!.id, "no");
    expect(await f.findWork()).toEqual([]); // within the interval
    clock += 60_000;
    const second = await f.findWork();
    expect(second).toHaveLength(1);
    await ledger.cancelOrder(second[0]!.id, "no");

    const waiting = finder({ sources: ["todo", "goals"], maxOrdersPerRound: 1 });
    const held = await waiting.findWork();
    expect(held.map((o) => o.status)).toEqual(["waiting"]);
    clock += 60_000;
    expect(await waiting.findWork()).toEqual([]); // one finding already waits
  });
});
