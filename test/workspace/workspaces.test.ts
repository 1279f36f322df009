import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Workspace, WorkspaceError, Workspaces } from "../../src/workspace/index.ts";
import { commitFile, isolateGitConfig, makeRepo, sh, type TempRepo } from "./helpers.ts";

const author = { authorName: "Agent Smith", authorEmail: "agent@nightshift.test" };

let repo: TempRepo;
const repos: TempRepo[] = [];

function setup(options: { keepFailed?: number; maxFailedBytes?: number } = {}) {
  repo = makeRepo();
  repos.push(repo);
  const rootDir = join(repo.dir, ".nightshift", "worktrees");
  return new Workspaces({ repoPath: repo.dir, branch: "main", rootDir, ...options });
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<WorkspaceError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkspaceError);
  expect((error as WorkspaceError).code).toBe(code);
  return error as WorkspaceError;
}

function branchExists(dir: string, branch: string): boolean {
  return sh(dir, "branch", "--list", branch) !== "";
}

beforeAll(isolateGitConfig);
afterEach(() => {
  for (const r of repos.splice(0)) r.cleanup();
});

describe("mainTip", () => {
  it("returns the sha of the landing branch", async () => {
    const ws = setup();
    expect(await ws.mainTip()).toBe(sh(repo.dir, "rev-parse", "main"));
  });

  it("fails clearly for a missing branch, a missing directory and a non-repository", async () => {
    setup();
    const noBranch = new Workspaces({ repoPath: repo.dir, branch: "trunk", rootDir: repo.dir });
    const e = await expectCode(noBranch.mainTip(), "branch_not_found");
    expect(e.message).toContain("trunk");
    const missing = join(repo.dir, "does-not-exist");
    await expectCode(
      new Workspaces({ repoPath: missing, branch: "main", rootDir: missing }).mainTip(),
      "repo_not_found",
    );
    const plain = mkdtempSync(join(tmpdir(), "nightshift-plain-"));
    try {
      await expectCode(
        new Workspaces({ repoPath: plain, branch: "main", rootDir: plain }).mainTip(),
        "repo_not_found",
      );
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });
});

describe("assertSafeToLand", () => {
  it("refuses while the user's checkout has the landing branch, and names the fix", async () => {
    const ws = setup();
    const e = await expectCode(ws.assertSafeToLand(), "branch_checked_out");
    expect(e.message).toContain(repo.dir);
    expect(e.hint).toContain("git switch --detach");
    sh(repo.dir, "switch", "--quiet", "--detach");
    await expect(ws.assertSafeToLand()).resolves.toBeUndefined();
  });

  it("also sees the branch in another worktree of the user's", async () => {
    const ws = setup();
    sh(repo.dir, "switch", "--quiet", "--detach");
    const other = join(repo.dir, "..", `${repo.dir.split("/").pop()}-other`);
    sh(repo.dir, "worktree", "add", "--quiet", other, "main");
    try {
      const e = await expectCode(ws.assertSafeToLand(), "branch_checked_out");
      expect(e.message).toContain(other);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe("create", () => {
  it("makes a worktree on a new branch at the main tip, invisible to the user's git status", async () => {
    const ws = setup();
    const w = await ws.create("r1");
    expect(w).toEqual({
      runId: "r1",
      path: join(repo.dir, ".nightshift", "worktrees", "run-r1"),
      branch: "nightshift/run-r1",
      baseCommit: sh(repo.dir, "rev-parse", "main"),
    });
    expect(readFileSync(join(w.path, "README.md"), "utf8")).toContain("line one");
    expect(sh(w.path, "rev-parse", "--abbrev-ref", "HEAD")).toBe("nightshift/run-r1");
    await ws.create("r2");
    writeFileSync(join(w.path, "new.txt"), "x");
    expect(sh(repo.dir, "status", "--porcelain", "--untracked-files=all")).toBe("");
    const exclude = readFileSync(join(repo.dir, ".git", "info", "exclude"), "utf8");
    expect(exclude.match(/^\/\.nightshift\/$/gm)).toHaveLength(1);
    expect(existsSync(join(repo.dir, ".gitignore"))).toBe(false);
  });

  it("replaces a stale worktree and branch left behind by a crash", async () => {
    const first = setup();
    const stale = await first.create("r1");
    writeFileSync(join(stale.path, "leftover.txt"), "from before the crash");
    await first.commitAll(stale, { message: "half done", ...author });
    const tip = commitFile(repo.dir, "moved.txt", "main moved on");

    const second = new Workspaces({ repoPath: repo.dir, branch: "main", rootDir: first.rootDir });
    const fresh = await second.create("r1");
    expect(fresh.baseCommit).toBe(tip);
    expect(sh(fresh.path, "rev-parse", "HEAD")).toBe(tip);
    expect(existsSync(join(fresh.path, "leftover.txt"))).toBe(false);
  });

  it("rejects a run id that cannot name a directory and a branch", async () => {
    const ws = setup();
    await expectCode(ws.create("../escape"), "invalid_run_id");
    await expectCode(ws.create("a b"), "invalid_run_id");
  });
});

describe("commitAll and changedFiles", () => {
  it("commits everything not ignored, as the given author, without a global identity", async () => {
    const ws = setup();
    commitFile(repo.dir, ".gitignore", "*.log\n");
    const w = await ws.create("r1");
    expect(await ws.commitAll(w, { message: "nothing", ...author })).toBeNull();

    writeFileSync(join(w.path, "feature.ts"), "export const x = 1;\n");
    writeFileSync(join(w.path, "debug.log"), "noise");
    writeFileSync(join(w.path, "README.md"), "changed\n");
    const sha = await ws.commitAll(w, { message: "#12: add feature", ...author });
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(sh(w.path, "rev-parse", "HEAD")).toBe(sha);
    expect(sh(w.path, "log", "-1", "--format=%an <%ae>|%s")).toBe(
      "Agent Smith <agent@nightshift.test>|#12: add feature",
    );
    expect(await ws.changedFiles(w)).toEqual(["README.md", "feature.ts"]);
    expect(await ws.commitAll(w, { message: "again", ...author })).toBeNull();
  });

  it("lists both sides of a rename and deletions", async () => {
    const ws = setup();
    const w = await ws.create("r1");
    sh(w.path, "mv", "README.md", "DOCS.md");
    await ws.commitAll(w, { message: "rename", ...author });
    expect(await ws.changedFiles(w)).toEqual(["DOCS.md", "README.md"]);
  });
});

describe("rebaseOntoMain", () => {
  async function withChange(ws: Workspaces, file: string, content: string): Promise<Workspace> {
    const w = await ws.create("r1");
    writeFileSync(join(w.path, file), content);
    await ws.commitAll(w, { message: `edit ${file}`, ...author });
    return w;
  }

  it("is a no-op when the branch already sits on the main tip", async () => {
    const ws = setup();
    const w = await withChange(ws, "a.txt", "a\n");
    const head = sh(w.path, "rev-parse", "HEAD");
    expect(await ws.rebaseOntoMain(w)).toEqual({ ok: true, commit: head, rebased: false });
  });

  it("replays the run's commits onto a moved main", async () => {
    const ws = setup();
    const w = await withChange(ws, "a.txt", "a\n");
    const tip = commitFile(repo.dir, "b.txt", "b\n");
    const result = await ws.rebaseOntoMain(w);
    expect(result).toMatchObject({ ok: true, rebased: true });
    if (!result.ok) throw new Error("unreachable");
    expect(sh(w.path, "rev-parse", "HEAD")).toBe(result.commit);
    expect(sh(w.path, "rev-parse", "HEAD^")).toBe(tip);
    expect(sh(w.path, "log", "-1", "--format=%an")).toBe("Agent Smith");
    expect(w.baseCommit).toBe(tip);
    expect(await ws.changedFiles(w)).toEqual(["a.txt"]);
  });

  it("reports conflicting paths and leaves the worktree clean at its previous commit", async () => {
    const ws = setup();
    const w = await withChange(ws, "README.md", "agent's line\n");
    const before = sh(w.path, "rev-parse", "HEAD");
    commitFile(repo.dir, "README.md", "user's line\n");
    expect(await ws.rebaseOntoMain(w)).toEqual({ ok: false, conflicts: ["README.md"] });
    expect(sh(w.path, "rev-parse", "HEAD")).toBe(before);
    expect(sh(w.path, "status", "--porcelain")).toBe("");
    expect(readFileSync(join(w.path, "README.md"), "utf8")).toBe("agent's line\n");
  });
});

describe("resume", () => {
  it("puts an adopted run's worktree back at exactly its gate-passed candidate", async () => {
    const ws = setup();
    const w = await ws.create("r1");
    const base = w.baseCommit;
    writeFileSync(join(w.path, "a.txt"), "a\n");
    const candidate = (await ws.commitAll(w, { message: "edit a.txt", ...author })) as string;
    // The dead process had rebased the branch onto a newer main (gates never ran on that) and
    // left the worktree dirty.
    commitFile(repo.dir, "b.txt", "b\n");
    expect(await ws.rebaseOntoMain(w)).toMatchObject({ ok: true, rebased: true });
    writeFileSync(join(w.path, "half-done.txt"), "x\n");

    const resumed = await ws.resume("r1", candidate);
    expect(resumed).toEqual({ runId: "r1", path: w.path, branch: w.branch, baseCommit: base });
    expect(sh(w.path, "rev-parse", "HEAD")).toBe(candidate);
    expect(sh(repo.dir, "rev-parse", w.branch)).toBe(candidate);
    expect(existsSync(join(w.path, "half-done.txt"))).toBe(false);
    expect(await ws.changedFiles(resumed as Workspace)).toEqual(["a.txt"]);

    // Without its worktree, the branch is enough.
    rmSync(w.path, { recursive: true, force: true });
    expect((await ws.resume("r1", candidate))?.baseCommit).toBe(base);
    expect(sh(w.path, "rev-parse", "HEAD")).toBe(candidate);
  });

  it("gives up on a candidate that is gone or already on main", async () => {
    const ws = setup();
    expect(await ws.resume("r1", "0".repeat(40))).toBeUndefined();
    expect(await ws.resume("r1", await ws.mainTip())).toBeUndefined();
  });
});

describe("fastForwardMain and isAncestor", () => {
  it("moves main forward by compare-and-swap and refuses anything else", async () => {
    const ws = setup();
    sh(repo.dir, "switch", "--quiet", "--detach");
    const old = await ws.mainTip();
    const w = await ws.create("r1");
    writeFileSync(join(w.path, "a.txt"), "a\n");
    const next = (await ws.commitAll(w, { message: "a", ...author })) as string;

    expect(await ws.isAncestor(next, old)).toBe(false);
    expect(await ws.fastForwardMain(old, next)).toBe(true);
    expect(await ws.mainTip()).toBe(next);
    expect(await ws.isAncestor(next, "main")).toBe(true);

    // Somebody else moved main since we read `old`: we lose the race without throwing.
    expect(await ws.fastForwardMain(old, next)).toBe(false);
    expect(await ws.mainTip()).toBe(next);

    const e = await expectCode(ws.fastForwardMain(next, old), "not_fast_forward");
    expect(e.message).toContain("only moves forward");
    await expectCode(ws.fastForwardMain(next, "f".repeat(40)), "commit_not_found");
  });

  it("never moves a branch the user has checked out", async () => {
    const ws = setup();
    const old = await ws.mainTip();
    const w = await ws.create("r1");
    writeFileSync(join(w.path, "a.txt"), "a\n");
    const next = (await ws.commitAll(w, { message: "a", ...author })) as string;
    await expectCode(ws.fastForwardMain(old, next), "branch_checked_out");
    expect(await ws.mainTip()).toBe(old);
  });
});

describe("release and prune", () => {
  it("leaves a live process's perpetual checkout alone, and prunes a dead one's", async () => {
    const ws = setup();
    const dead = spawnSync("true").pid;
    const live = await ws.create(`perpetual-lint-${process.pid}`);
    const leftover = await ws.create(`perpetual-coverage-${dead}`);
    const result = await ws.prune(new Set());
    expect(result.removed).toEqual([`perpetual-coverage-${dead}`]);
    expect(existsSync(live.path)).toBe(true);
    expect(existsSync(leftover.path)).toBe(false);
    await ws.release(live, { keep: false });
    expect(existsSync(live.path)).toBe(false);
  });

  it("removes worktree and branch when not kept", async () => {
    const ws = setup();
    const w = await ws.create("r1");
    await ws.release(w, { keep: false });
    expect(existsSync(w.path)).toBe(false);
    expect(branchExists(repo.dir, w.branch)).toBe(false);
    expect(sh(repo.dir, "worktree", "list")).not.toContain("run-r1");
  });

  it("keeps at most keepFailed failed worktrees, evicting the oldest", async () => {
    const ws = setup({ keepFailed: 2 });
    const kept: Workspace[] = [];
    for (const id of ["a", "b", "c"]) {
      const w = await ws.create(id);
      kept.push(w);
      const { evicted } = await ws.release(w, { keep: true });
      if (id === "c") expect(evicted).toEqual(["a"]);
      // Distinct, ordered mtimes even on a coarse-grained filesystem clock.
      const marker = join(ws.rootDir, ".kept", id);
      const t = new Date(Date.now() - (3 - kept.length) * 60_000);
      utimesSync(marker, t, t);
    }
    expect(existsSync(ws.pathOf("a"))).toBe(false);
    expect(branchExists(repo.dir, "nightshift/run-a")).toBe(false);
    expect((await ws.listKept()).map((k) => k.runId)).toEqual(["b", "c"]);
  });

  it("keeps kept worktrees within maxFailedBytes", async () => {
    const ws = setup({ maxFailedBytes: 3 * 1024 * 1024 });
    for (const id of ["a", "b"]) {
      const w = await ws.create(id);
      writeFileSync(join(w.path, "big.bin"), Buffer.alloc(2 * 1024 * 1024, 7));
      await ws.release(w, { keep: true });
    }
    const kept = await ws.listKept();
    expect(kept.map((k) => k.runId)).toEqual(["b"]);
    expect(kept[0]?.bytes).toBeGreaterThanOrEqual(2 * 1024 * 1024);
    expect(existsSync(ws.pathOf("a"))).toBe(false);
  });

  it("after a crash removes worktrees and branches of runs neither active nor kept", async () => {
    const before = setup();
    const a = await before.create("a");
    const b = await before.create("b");
    const c = await before.create("c");
    await before.release(b, { keep: true });
    sh(repo.dir, "branch", "nightshift/run-orphan", "main");
    rmSync(a.path, { recursive: true, force: true }); // half-deleted: directory gone, branch left

    const after = new Workspaces({ repoPath: repo.dir, branch: "main", rootDir: before.rootDir });
    const result = await after.prune(new Set(["c"]));
    expect(result.removed).toEqual(["a", "orphan"]);
    expect(branchExists(repo.dir, "nightshift/run-a")).toBe(false);
    expect(branchExists(repo.dir, "nightshift/run-orphan")).toBe(false);
    expect(existsSync(b.path) && branchExists(repo.dir, b.branch)).toBe(true);
    expect(existsSync(c.path) && branchExists(repo.dir, c.branch)).toBe(true);
    expect(statSync(join(c.path, "README.md")).isFile()).toBe(true);
    expect(sh(repo.dir, "worktree", "list")).not.toContain("run-a");
  });
});
