import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createCommandGate, type GateOutcome } from "../../src/gates/index.ts";
import { type LandingResult, SpeculativeMergeQueue } from "../../src/merge/index.ts";
import { Workspaces } from "../../src/workspace/index.ts";
import { sh } from "../workspace/helpers.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

const AUTHOR = { authorName: "agent", authorEmail: "agent@example.com" };

async function setUp(options: { maxBatch: number; depth: number }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-queue-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  sh(dir, "init", "--quiet", "-b", "main");
  await writeFile(path.join(dir, "shared.txt"), "one\n");
  sh(dir, "add", "-A");
  sh(dir, "commit", "--quiet", "-m", "base");
  sh(dir, "checkout", "--quiet", "--detach");
  const workspaces = new Workspaces({
    repoPath: dir,
    branch: "main",
    rootDir: path.join(dir, ".nightshift", "worktrees"),
  });
  const scratchDir = path.join(dir, ".nightshift", "queue");
  // "The tests": no file on main may say BROKEN.
  const gate = createCommandGate({
    name: "test",
    command: "! grep -rq BROKEN --exclude-dir=.git .",
  });
  const gateRuns: string[] = [];
  const queue = new SpeculativeMergeQueue(workspaces, [gate], {
    ...options,
    maxRounds: 10,
    scratchDir,
  });
  return { dir, workspaces, queue, scratchDir, gateRuns };
}

async function candidate(
  t: Awaited<ReturnType<typeof setUp>>,
  runId: string,
  files: Record<string, string>,
) {
  const ws = await t.workspaces.create(runId);
  for (const [file, content] of Object.entries(files)) {
    await writeFile(path.join(ws.path, file), content);
  }
  await t.workspaces.commitAll(ws, { message: `candidate ${runId}`, ...AUTHOR });
  return ws;
}

describe("the speculative merge queue on real git", () => {
  it("lands green candidates in batches, ejects the broken one and the conflicting one, main green throughout", async () => {
    const t = await setUp({ maxBatch: 4, depth: 2 });
    const before = sh(t.dir, "rev-parse", "main");
    const spaces = [
      await candidate(t, "1", { "a.txt": "a\n" }),
      await candidate(t, "2", { "b.txt": "b\n" }),
      await candidate(t, "3", { "c.txt": "BROKEN\n" }),
      await candidate(t, "4", { "shared.txt": "four\n" }),
      await candidate(t, "5", { "shared.txt": "five\n" }),
      await candidate(t, "6", { "d.txt": "d\n" }),
    ];
    const gates: Record<string, GateOutcome[]> = {};
    const recorded: Record<string, string> = {};
    const results = await Promise.all(
      spaces.map((ws) =>
        t.queue.land(ws, {
          onGate: async (outcome) => {
            gates[ws.runId] = [...(gates[ws.runId] ?? []), outcome];
          },
          beforeFastForward: async (commit) => {
            recorded[ws.runId] = commit;
          },
        }),
      ),
    );
    const byRun = Object.fromEntries(
      spaces.map((ws, i) => [ws.runId, results[i] as LandingResult]),
    );
    expect(byRun["3"]).toMatchObject({
      status: "rejected",
      failed: { gate: "test", passed: false },
    });
    expect(byRun["5"]).toEqual({ status: "conflict", conflicts: ["shared.txt"] });
    for (const id of ["1", "2", "4", "6"]) {
      const result = byRun[id];
      expect(result?.status, id).toBe("landed");
      if (result?.status !== "landed") continue;
      // The commit recorded before main moved is the one that landed, and it is on main.
      expect(recorded[id]).toBe(result.commit);
      sh(t.dir, "merge-base", "--is-ancestor", result.commit, "main");
      expect(sh(t.dir, "rev-parse", `${result.commit}^`)).toBe(result.previousMain);
    }
    // Four candidates landed; every commit on main is green (no BROKEN file anywhere).
    const history = sh(t.dir, "rev-list", "--reverse", `${before}..main`).split("\n");
    expect(history).toHaveLength(4);
    for (const commit of history) {
      // git grep exits 1 when nothing matches.
      expect(() => sh(t.dir, "grep", "-l", "BROKEN", commit, "--", "."), commit).toThrow();
    }
  });

  it("moves main once for a green batch, to exactly the commit its gates passed", async () => {
    const t = await setUp({ maxBatch: 4, depth: 1 });
    const before = sh(t.dir, "rev-parse", "main");
    // The first candidate goes alone (the runner is free); the next three queue up behind it.
    const spaces = [
      await candidate(t, "1", { "a.txt": "a\n" }),
      await candidate(t, "2", { "b.txt": "b\n" }),
      await candidate(t, "3", { "c.txt": "c\n" }),
      await candidate(t, "4", { "d.txt": "d\n" }),
    ];
    const tested: string[] = [];
    const results = await Promise.all(
      spaces.map((ws) =>
        t.queue.land(ws, {
          onGate: async (outcome, commit) => {
            if (outcome.passed) tested.push(commit);
          },
          beforeFastForward: async () => {},
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(["landed", "landed", "landed", "landed"]);
    const moves = sh(t.dir, "reflog", "show", "--format=%H", "refs/heads/main").split("\n");
    // base commit, then one move for the first candidate and one for the batch of three.
    expect(moves).toHaveLength(3);
    for (const tip of moves.slice(0, 2)) expect(tested).toContain(tip);
    expect(sh(t.dir, "rev-list", "--count", `${before}..main`)).toBe("4");
    // Scratch worktrees are gone once their tests are done.
    await expect.poll(() => readdir(t.scratchDir), { timeout: 60_000 }).toEqual([]);
  });
});
