import { appendFile, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { diskUsage, removeTree } from "./disk.ts";
import { GitError, WorkspaceError } from "./errors.ts";
import { git, splitZ } from "./git.ts";
import { OneAtATime } from "./one-at-a-time.ts";
import { assertValidRunId, canonical, isInside } from "./paths.ts";
import { RemoteMain } from "./remote-main.ts";

export interface WorkspacesOptions {
  repoPath: string;
  /** The landing branch, e.g. "main". */
  branch: string;
  /** Where worktrees live, e.g. `<repo>/.nightshift/worktrees`. */
  rootDir: string;
  /** How many failed worktrees to keep for inspection; default 10. */
  keepFailed?: number;
  /** Disk budget for all kept worktrees together; default 1 GiB. */
  maxFailedBytes?: number;
  /** Committer for rewrites (rebase); authors of commits are never changed. */
  committer?: { name: string; email: string };
  /**
   * A shared git remote main lives on (`[scale] remote`): read from there and moved only by a
   * compare-and-swap push. Unset: main is the repository's own branch.
   */
  remote?: string;
}

/**
 * A run's worktree. `baseCommit` is the main tip the branch currently sits on; a successful
 * rebaseOntoMain moves it, so changedFiles always reports only the run's own changes.
 */
export interface Workspace {
  readonly runId: string;
  readonly path: string;
  readonly branch: string;
  baseCommit: string;
}

export interface CommitOptions {
  message: string;
  authorName: string;
  authorEmail: string;
}

export type RebaseResult =
  | { ok: true; commit: string; rebased: boolean }
  | { ok: false; conflicts: string[] };

export interface KeptWorkspace {
  runId: string;
  path: string;
  keptAtMs: number;
  bytes: number;
}

interface WorktreeEntry {
  path: string;
  branchRef: string | null;
}

const RUN_DIR_PREFIX = "run-";
const BRANCH_PREFIX = "nightshift/run-";
/** Markers of kept worktrees live here, outside every worktree, so they never show in a diff. */
const KEPT_DIR = ".kept";
const DEFAULT_COMMITTER = { name: "nightshift", email: "nightshift@localhost" };

export class Workspaces {
  readonly repoPath: string;
  readonly branch: string;
  readonly rootDir: string;
  readonly keepFailed: number;
  readonly maxFailedBytes: number;
  private readonly committer: { name: string; email: string };
  /** Main on the shared remote, when there is one. */
  private readonly shared: RemoteMain | undefined;
  private repoChecked = false;
  private excludeChecked = false;
  /** Serialises structural changes (worktree add/remove, branch deletion) made by this process. */
  private readonly structure = new OneAtATime();
  /**
   * `git worktree add` briefly gives the new worktree a placeholder HEAD (the null object id), and a
   * fetch running meanwhile fails with "bad object worktrees/<name>/HEAD": the two take turns.
   */
  private readonly fetchesAndWorktrees = new OneAtATime();

  constructor(options: WorkspacesOptions) {
    this.repoPath = resolve(options.repoPath);
    this.branch = options.branch;
    this.rootDir = resolve(options.rootDir);
    this.keepFailed = options.keepFailed ?? 10;
    this.maxFailedBytes = options.maxFailedBytes ?? 1024 ** 3;
    this.committer = options.committer ?? DEFAULT_COMMITTER;
    this.shared = options.remote
      ? new RemoteMain(this.repoPath, options.remote, this.branch, this.fetchesAndWorktrees)
      : undefined;
  }

  async mainTip(): Promise<string> {
    await this.assertRepo();
    if (this.shared) return this.shared.tip();
    const ref = `refs/heads/${this.branch}`;
    const result = await this.git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], [1]);
    if (result.exitCode !== 0) {
      throw new WorkspaceError(
        "branch_not_found",
        `branch ${JSON.stringify(this.branch)} does not exist in ${this.repoPath}`,
        "create it with a first commit, or set [factory] branch in nightshift.toml to an existing branch",
      );
    }
    return result.stdout.trim();
  }

  /**
   * We move the landing branch with update-ref; in somebody's checkout that would make their
   * working tree silently disagree with HEAD, so refuse instead.
   */
  async assertSafeToLand(): Promise<void> {
    await this.assertRepo();
    // On a shared remote nobody's checkout is moved: the local branch is left alone.
    if (this.shared) {
      await this.shared.tip();
      return;
    }
    await this.assertBranchHasCommits();
    const ours = await canonical(this.rootDir);
    const ref = `refs/heads/${this.branch}`;
    for (const entry of await this.worktrees()) {
      if (entry.branchRef !== ref) continue;
      if (isInside(await canonical(entry.path), ours)) continue;
      throw new WorkspaceError(
        "branch_checked_out",
        `branch ${JSON.stringify(this.branch)} is checked out in ${entry.path}; nightshift moves that branch while it runs and would leave that checkout out of sync`,
        "switch that checkout to another branch, e.g. `git switch --detach`, or set [factory] branch in nightshift.toml",
      );
    }
  }

  /**
   * In a repository with no commits yet the landing branch is unborn: `git worktree list` shows it
   * checked out, but `git switch --detach` cannot leave it, and there is nothing to build on.
   */
  private async assertBranchHasCommits(): Promise<void> {
    const ref = `refs/heads/${this.branch}`;
    const tip = await this.git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], [1]);
    if (tip.exitCode === 0) return;
    const head = await this.git(["symbolic-ref", "--quiet", "HEAD"], [1]);
    if (head.stdout.trim() !== ref) return;
    throw new WorkspaceError(
      "branch_not_found",
      `branch ${JSON.stringify(this.branch)} has no commits yet in ${this.repoPath}: nightshift lands every change on top of the branch's last commit`,
      `make a first commit (e.g. \`git commit --allow-empty -m "initial commit"\`), then \`git switch --detach\` so your checkout leaves ${JSON.stringify(this.branch)} to nightshift`,
    );
  }

  async create(runId: string): Promise<Workspace> {
    assertValidRunId(runId);
    await this.ensureExcluded();
    return this.serialized(async () => {
      const baseCommit = await this.mainTip();
      await this.removeRun(runId);
      const path = this.pathOf(runId);
      const branch = BRANCH_PREFIX + runId;
      await mkdir(this.rootDir, { recursive: true });
      await this.worktreeCommand(["add", "--quiet", "-b", branch, path, baseCommit]);
      return { runId, path, branch, baseCommit };
    });
  }

  /**
   * The workspace of a run adopted after a restart, at exactly `candidate` (the commit whose gates
   * passed): a fresh worktree on the run's branch, reset to it, whatever state the dead process
   * left behind (a rebase half done, a branch already rebased onto a main whose gates never ran).
   * Its base is where the candidate meets main, so base..HEAD is the run's own change.
   * Undefined when the candidate commit is gone or is already part of main.
   */
  async resume(runId: string, candidate: string): Promise<Workspace | undefined> {
    assertValidRunId(runId);
    await this.ensureExcluded();
    return this.serialized(async () => {
      let found = await this.git(["cat-file", "-e", `${candidate}^{commit}`], [1, 128]);
      // A candidate from another host: its worker published it on the shared remote.
      if (found.exitCode !== 0 && (await this.shared?.fetchCandidate(runId))) {
        found = await this.git(["cat-file", "-e", `${candidate}^{commit}`], [1, 128]);
      }
      if (found.exitCode !== 0) return undefined;
      const tip = await this.mainTip();
      const head = await this.resolveCommit(candidate);
      if (await this.isAncestor(head, tip)) return undefined;
      const base = (await this.git(["merge-base", tip, head])).stdout.trim();
      const path = this.pathOf(runId);
      const branch = BRANCH_PREFIX + runId;
      if (await exists(path)) {
        await this.worktreeCommand(["remove", "--force", "--force", path], [128]);
        await removeTree(path);
      }
      await this.worktreeCommand(["prune"]);
      await rm(this.markerOf(runId), { force: true });
      await mkdir(this.rootDir, { recursive: true });
      await this.worktreeCommand(["add", "--quiet", "-B", branch, path, head]);
      return { runId, path, branch, baseCommit: base };
    });
  }

  async commitAll(ws: Workspace, options: CommitOptions): Promise<string | null> {
    await git(["add", "--all"], { cwd: ws.path });
    const staged = await git(["diff", "--cached", "--quiet"], { cwd: ws.path, okCodes: [1] });
    if (staged.exitCode === 0) return null;
    const env = identityEnv(
      { name: options.authorName, email: options.authorEmail },
      { name: options.authorName, email: options.authorEmail },
    );
    // verbatim: an agent's message like "#12: fix" must not be eaten as a comment line.
    const args = ["commit", "--quiet", "--no-verify", "--cleanup=verbatim", "-m", options.message];
    await git(args, { cwd: ws.path, env });
    return headOf(ws.path);
  }

  async changedFiles(ws: Workspace): Promise<string[]> {
    const args = ["diff", "--name-only", "--no-renames", "-z", ws.baseCommit, "HEAD"];
    return splitZ((await git(args, { cwd: ws.path })).stdout);
  }

  async rebaseOntoMain(ws: Workspace): Promise<RebaseResult> {
    const tip = await this.mainTip();
    const head = await headOf(ws.path);
    if (await this.isAncestor(tip, head)) return { ok: true, commit: head, rebased: false };
    const env = identityEnv(this.committer, this.committer);
    try {
      await git(["rebase", "--quiet", "--no-autostash", tip], { cwd: ws.path, env });
    } catch (error) {
      const conflicts = await unmergedPaths(ws.path);
      await git(["rebase", "--abort"], { cwd: ws.path, okCodes: [1, 128] });
      if (conflicts.length > 0) return { ok: false, conflicts };
      throw error;
    }
    ws.baseCommit = tip;
    return { ok: true, commit: await headOf(ws.path), rebased: true };
  }

  async fastForwardMain(expectedOld: string, next: string): Promise<boolean> {
    await this.assertSafeToLand();
    const old = await this.resolveCommit(expectedOld);
    const target = await this.resolveCommit(next);
    if (!(await this.isAncestor(old, target))) {
      throw new WorkspaceError(
        "not_fast_forward",
        `refusing to move ${this.branch} from ${old} to ${target}: it is not a descendant, and ${this.branch} only moves forward`,
        "rebase the candidate onto the current main tip (rebaseOntoMain) and land the rebased commit",
      );
    }
    if (this.shared) return this.shared.compareAndSwap(old, target);
    const ref = `refs/heads/${this.branch}`;
    try {
      await this.git(["update-ref", "-m", "nightshift: land", ref, target, old]);
      return true;
    } catch (error) {
      // A lost compare-and-swap is an expected race, not a failure.
      if (error instanceof GitError && (await this.mainTip()) !== old) return false;
      throw error;
    }
  }

  /**
   * Makes a gate-passed candidate reachable by every host (on a shared remote), so that whichever
   * worker takes the run over after this one dies can land it. Nothing to do on one host.
   */
  async publish(ws: Workspace, commit: string): Promise<void> {
    await this.shared?.publish(ws.runId, commit);
  }

  async release(ws: Workspace, options: { keep: boolean }): Promise<{ evicted: string[] }> {
    await this.shared?.forget(ws.runId);
    if (!options.keep) {
      await this.serialized(() => this.removeRun(ws.runId));
      return { evicted: [] };
    }
    await mkdir(join(this.rootDir, KEPT_DIR), { recursive: true });
    const marker = { runId: ws.runId, branch: ws.branch, keptAt: new Date().toISOString() };
    await writeFile(this.markerOf(ws.runId), `${JSON.stringify(marker)}\n`);
    return { evicted: await this.enforceCaps() };
  }

  /**
   * Start-up recovery: anything under rootDir (worktree or nightshift/run-* branch) that belongs
   * to neither an active run nor a kept one is debris from a crash.
   */
  async prune(activeRunIds: Set<string>): Promise<{ removed: string[]; evicted: string[] }> {
    await this.ensureExcluded();
    const removed = await this.serialized(async () => {
      await this.worktreeCommand(["prune"]);
      const kept = new Set((await this.keptMarkers()).map((m) => m.runId));
      const candidates = new Set([...(await this.runDirs()), ...(await this.runBranches())]);
      const stale = [...candidates].filter(
        (id) => !activeRunIds.has(id) && !kept.has(id) && !isLiveScratch(id),
      );
      for (const runId of stale) await this.removeRun(runId);
      return stale.sort();
    });
    return { removed, evicted: await this.enforceCaps() };
  }

  /** Removes kept worktrees, oldest first, until both caps hold; returns the evicted run ids. */
  async enforceCaps(): Promise<string[]> {
    return this.serialized(async () => {
      const kept = await this.listKeptUnlocked();
      let count = kept.length;
      let bytes = kept.reduce((sum, k) => sum + k.bytes, 0);
      const evicted: string[] = [];
      for (const k of kept) {
        if (count <= this.keepFailed && bytes <= this.maxFailedBytes) break;
        await this.removeRun(k.runId);
        count -= 1;
        bytes -= k.bytes;
        evicted.push(k.runId);
      }
      return evicted;
    });
  }

  /** Kept (failed) worktrees, oldest first. */
  async listKept(): Promise<KeptWorkspace[]> {
    return this.serialized(() => this.listKeptUnlocked());
  }

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const a = await this.resolveCommit(ancestor);
    const d = await this.resolveCommit(descendant);
    const result = await this.git(["merge-base", "--is-ancestor", a, d], [1]);
    return result.exitCode === 0;
  }

  pathOf(runId: string): string {
    return join(this.rootDir, RUN_DIR_PREFIX + runId);
  }

  private markerOf(runId: string): string {
    return join(this.rootDir, KEPT_DIR, runId);
  }

  private async resolveCommit(rev: string): Promise<string> {
    const result = await this.git(["rev-parse", "--verify", "--quiet", `${rev}^{commit}`], [1]);
    if (result.exitCode === 0) return result.stdout.trim();
    throw new WorkspaceError(
      "commit_not_found",
      `commit ${JSON.stringify(rev)} does not exist in ${this.repoPath}`,
      "pass a commit sha that exists in this repository (was it garbage-collected or made in another clone?)",
    );
  }

  private async removeRun(runId: string): Promise<void> {
    const path = this.pathOf(runId);
    if (await exists(path)) {
      // Not being a registered worktree (exit 128) is fine: the directory goes either way.
      await this.worktreeCommand(["remove", "--force", "--force", path], [128]);
      await removeTree(path);
    }
    await this.worktreeCommand(["prune"]);
    const ref = `refs/heads/${BRANCH_PREFIX}${runId}`;
    const found = await this.git(["show-ref", "--verify", "--quiet", ref], [1]);
    if (found.exitCode === 0) await this.git(["update-ref", "-d", ref]);
    await rm(this.markerOf(runId), { force: true });
  }

  private async listKeptUnlocked(): Promise<KeptWorkspace[]> {
    const kept: KeptWorkspace[] = [];
    for (const marker of await this.keptMarkers()) {
      const path = this.pathOf(marker.runId);
      if (!(await exists(path))) {
        // Someone deleted the worktree by hand; forget it rather than count a ghost.
        await this.removeRun(marker.runId);
        continue;
      }
      kept.push({ ...marker, path, bytes: await diskUsage(path) });
    }
    return kept.sort((a, b) => a.keptAtMs - b.keptAtMs || a.runId.localeCompare(b.runId));
  }

  private async keptMarkers(): Promise<{ runId: string; keptAtMs: number }[]> {
    const dir = join(this.rootDir, KEPT_DIR);
    const names = await readdir(dir).catch(() => [] as string[]);
    const markers: { runId: string; keptAtMs: number }[] = [];
    for (const runId of names) {
      const info = await stat(join(dir, runId)).catch(() => null);
      if (info?.isFile()) markers.push({ runId, keptAtMs: info.mtimeMs });
    }
    return markers;
  }

  private async runDirs(): Promise<string[]> {
    const entries = await readdir(this.rootDir, { withFileTypes: true }).catch(() => []);
    return entries
      .filter((e) => e.isDirectory() && e.name.startsWith(RUN_DIR_PREFIX))
      .map((e) => e.name.slice(RUN_DIR_PREFIX.length));
  }

  private async runBranches(): Promise<string[]> {
    const prefix = `refs/heads/${BRANCH_PREFIX}`;
    const result = await this.git([
      "for-each-ref",
      "--format=%(refname)",
      "refs/heads/nightshift/",
    ]);
    return result.stdout
      .split("\n")
      .filter((ref) => ref.startsWith(prefix))
      .map((ref) => ref.slice(prefix.length));
  }

  private async worktrees(): Promise<WorktreeEntry[]> {
    const result = await this.git(["worktree", "list", "--porcelain"]);
    const entries: WorktreeEntry[] = [];
    for (const block of result.stdout.split("\n\n")) {
      const lines = block.split("\n");
      const path = lines.find((l) => l.startsWith("worktree "))?.slice("worktree ".length);
      if (!path) continue;
      const branchRef = lines.find((l) => l.startsWith("branch "))?.slice("branch ".length);
      entries.push({ path, branchRef: branchRef ?? null });
    }
    return entries;
  }

  /**
   * Worktrees inside the user's checkout would show up in their `git status`. info/exclude is
   * local to the clone, so this never touches a tracked .gitignore.
   */
  private async ensureExcluded(): Promise<void> {
    if (this.excludeChecked) return;
    await this.assertRepo();
    await mkdir(this.rootDir, { recursive: true });
    // A bare repository has no working tree (exit 128) and so nothing to hide.
    const top = await this.git(["rev-parse", "--show-toplevel"], [128]);
    if (top.exitCode === 0) {
      const topDir = await canonical(top.stdout.trim());
      const root = await canonical(this.rootDir);
      const first = relative(topDir, root).split(sep)[0];
      if (first && root !== topDir && isInside(root, topDir)) await this.appendExclude(first);
    }
    this.excludeChecked = true;
  }

  private async appendExclude(topDir: string): Promise<void> {
    const commonDir = (await this.git(["rev-parse", "--git-common-dir"])).stdout.trim();
    const file = join(resolve(this.repoPath, commonDir), "info", "exclude");
    const current = await readFile(file, "utf8").catch(() => "");
    const variants = new Set([topDir, `${topDir}/`, `/${topDir}`, `/${topDir}/`]);
    if (current.split("\n").some((line) => variants.has(line.trim()))) return;
    await mkdir(join(file, ".."), { recursive: true });
    const separator = current === "" || current.endsWith("\n") ? "" : "\n";
    await appendFile(file, `${separator}# added by nightshift: run worktrees\n/${topDir}/\n`);
  }

  private async assertRepo(): Promise<void> {
    if (this.repoChecked) return;
    const notFound = (cause?: unknown) =>
      new WorkspaceError(
        "repo_not_found",
        `${this.repoPath} is not a git repository`,
        "point nightshift at the root of an existing git repository (run `git init` there first if it is new)",
        { cause },
      );
    if (!(await exists(this.repoPath))) throw notFound();
    try {
      await this.git(["rev-parse", "--git-dir"]);
    } catch (error) {
      throw notFound(error);
    }
    this.repoChecked = true;
  }

  private git(args: string[], okCodes: number[] = []) {
    return git(args, { cwd: this.repoPath, okCodes });
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    return this.structure.run(fn);
  }

  private worktreeCommand(args: string[], okCodes: number[] = []) {
    return this.fetchesAndWorktrees.run(() => this.git(["worktree", ...args], okCodes));
  }
}

function identityEnv(
  author: { name: string; email: string },
  committer: { name: string; email: string },
): Record<string, string> {
  return {
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_COMMITTER_NAME: committer.name,
    GIT_COMMITTER_EMAIL: committer.email,
  };
}

async function headOf(path: string): Promise<string> {
  return (await git(["rev-parse", "HEAD"], { cwd: path })).stdout.trim();
}

async function unmergedPaths(path: string): Promise<string[]> {
  const result = await git(["diff", "--name-only", "--diff-filter=U", "-z"], {
    cwd: path,
    okCodes: [128],
  });
  return result.exitCode === 0 ? splitZ(result.stdout) : [];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * A checkout a process made for something other than a run (the perpetual sources run their lint
 * and coverage commands in `perpetual-<source>-<pid>`), while that process lives: the timekeeper's
 * prune must not pull it from under a command. A dead process's leftover is debris like any other.
 */
function isLiveScratch(id: string): boolean {
  const pid = Number(/^perpetual-[a-z]+-(\d+)$/.exec(id)?.[1]);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but another user's.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
