import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createCommandGate } from "../../src/gates/index.ts";
import { SerialMergeQueue } from "../../src/merge/index.ts";
import { type Workspace, WorkspaceError, Workspaces } from "../../src/workspace/index.ts";
import { isolateGitConfig, sh } from "./helpers.ts";

isolateGitConfig();

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

const AUTHOR = { authorName: "agent", authorEmail: "agent@example.com" };

/** A bare shared remote with a first commit on main, and `hosts` clones of it, each a worker's. */
async function sharedRemote(hosts: number) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-remote-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const remote = path.join(dir, "remote.git");
  sh(dir, "init", "--quiet", "--bare", "-b", "main", remote);
  const seed = path.join(dir, "seed");
  sh(dir, "init", "--quiet", "-b", "main", seed);
  await writeFile(path.join(seed, "README.md"), "shared\n");
  sh(seed, "add", "-A");
  sh(seed, "commit", "--quiet", "-m", "base");
  sh(seed, "push", "--quiet", remote, "main");
  const clones: Workspaces[] = [];
  for (let i = 0; i < hosts; i++) {
    const clone = path.join(dir, `host-${i}`);
    sh(dir, "clone", "--quiet", remote, clone);
    clones.push(
      new Workspaces({
        repoPath: clone,
        branch: "main",
        rootDir: path.join(clone, ".nightshift", "worktrees"),
        remote: "origin",
      }),
    );
  }
  const remoteMain = () => sh(remote, "rev-parse", "main");
  return { dir, remote, clones, remoteMain };
}

async function candidate(workspaces: Workspaces, runId: string, file: string, content: string) {
  const ws = await workspaces.create(runId);
  await writeFile(path.join(ws.path, file), content);
  const commit = await workspaces.commitAll(ws, { message: `candidate ${runId}`, ...AUTHOR });
  if (!commit) throw new Error("no commit");
  return { ws, commit };
}

describe("main on a shared git remote", () => {
  it("moves only by compare-and-swap: of two leaders pushing from the same tip, exactly one wins", async () => {
    for (let round = 0; round < 5; round++) {
      const { clones, remoteMain } = await sharedRemote(2);
      const [a, b] = clones as [Workspaces, Workspaces];
      const tip = remoteMain();
      expect(await a.mainTip()).toBe(tip);
      const one = await candidate(a, "1", "a.txt", "a\n");
      const two = await candidate(b, "2", "b.txt", "b\n");
      const won = await Promise.all([
        a.fastForwardMain(tip, one.commit),
        b.fastForwardMain(tip, two.commit),
      ]);
      expect(won.filter(Boolean)).toHaveLength(1);
      expect(remoteMain()).toBe(won[0] ? one.commit : two.commit);
      // The loser cannot move main from the stale tip, even a second time.
      const [loser, lost] = won[0] ? [b, two] : [a, one];
      expect(await loser.fastForwardMain(tip, lost.commit)).toBe(false);
    }
  });

  it("lands every good candidate of two racing leaders exactly once, linear and green at every commit", async () => {
    const { clones, remote } = await sharedRemote(2);
    // "The tests": no file may say BROKEN.
    const gate = createCommandGate({
      name: "test",
      command: "! grep -rq BROKEN --exclude-dir=.git .",
    });
    const landings: Promise<{ runId: string; status: string }>[] = [];
    for (const [host, workspaces] of clones.entries()) {
      // Each host believes it leads: the remote's compare-and-swap alone keeps main straight.
      const queue = new SerialMergeQueue(workspaces, [gate]);
      for (let i = 0; i < 4; i++) {
        const runId = `${host}${i}`;
        const broken = host === 1 && i % 2 === 1;
        const { ws } = await candidate(
          workspaces,
          runId,
          `f-${runId}.txt`,
          broken ? "BROKEN\n" : "ok\n",
        );
        await workspaces.publish(ws, await headOf(ws));
        landings.push(
          queue
            .land(ws, { onGate: async () => {}, beforeFastForward: async () => {} })
            .then((result) => ({ runId, status: result.status })),
        );
      }
    }
    const results = await Promise.all(landings);
    const landed = results
      .filter((r) => r.status === "landed")
      .map((r) => r.runId)
      .sort();
    expect(landed).toEqual(["00", "01", "02", "03", "10", "12"]);
    expect(
      results
        .filter((r) => r.status === "rejected")
        .map((r) => r.runId)
        .sort(),
    ).toEqual(["11", "13"]);

    const history = sh(remote, "rev-list", "--first-parent", "--reverse", "main").split("\n");
    const messages = history.map((c) => sh(remote, "log", "-1", "--format=%s", c));
    expect(messages.filter((m) => m.startsWith("candidate")).sort()).toEqual(
      landed.map((id) => `candidate ${id}`),
    );
    // Linear (every commit has one parent) and green: no commit on main says BROKEN.
    for (const commit of history.slice(1)) {
      expect(sh(remote, "rev-list", "--parents", "-n", "1", commit).split(" ")).toHaveLength(2);
      expect(grepBroken(remote, commit)).toBe(false);
    }
  });

  it("lets another host resume a published candidate", async () => {
    const { clones, remote } = await sharedRemote(2);
    const [a, b] = clones as [Workspaces, Workspaces];
    const { ws, commit } = await candidate(a, "7", "seven.txt", "7\n");
    await a.publish(ws, commit);
    const resumed = await b.resume("7", commit);
    expect(resumed).toBeDefined();
    expect(sh((resumed as Workspace).path, "rev-parse", "HEAD")).toBe(commit);
    expect(sh(remote, "for-each-ref", "refs/nightshift/candidates/")).toContain(commit);
    // Released, the candidate leaves the remote; a commit nobody published cannot be resumed.
    await a.release(ws, { keep: false });
    expect(sh(remote, "for-each-ref", "refs/nightshift/candidates/")).toBe("");
    expect(await b.resume("8", "0".repeat(40))).toBeUndefined();
  });

  it("names the remote and the fix when it cannot be reached", async () => {
    const { clones } = await sharedRemote(1);
    const repo = (clones[0] as Workspaces).repoPath;
    const lost = new Workspaces({
      repoPath: repo,
      branch: "main",
      rootDir: path.join(repo, ".nightshift", "worktrees"),
      remote: "nowhere",
    });
    const error = await lost.assertSafeToLand().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkspaceError);
    expect(error).toMatchObject({ code: "remote_unreachable" });
    expect(String((error as WorkspaceError).message)).toContain('"nowhere"');
    expect((error as WorkspaceError).hint).toContain("git remote -v");
  });
});

async function headOf(ws: Workspace): Promise<string> {
  return sh(ws.path, "rev-parse", "HEAD");
}

function grepBroken(repo: string, commit: string): boolean {
  try {
    execFileSync("git", ["grep", "-q", "BROKEN", commit], { cwd: repo, stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
