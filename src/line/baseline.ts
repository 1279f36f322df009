import { execFile } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { describeError } from "../errors/index.ts";
import { type Gate, type GateOutcome, runGates } from "../gates/index.ts";
import type { Ledger } from "../ledger/index.ts";
import type { Workspaces } from "../workspace/index.ts";

export interface BaselineVerdict {
  passed: boolean;
  commit: string;
  tree: string;
  /** Why main fails, in a line: the gate, and the telling line of its output. */
  cause?: string;
}

/**
 * Keeps the line honest about its own ground: main itself must pass the tree gates before any
 * agent is paid to build on it. A test command that cannot start (a missing module, a broken
 * toolchain) fails every candidate of every order alike; without this check each order would burn
 * its attempts and file a defect for a fault that is not its own.
 *
 * Verdicts are cached by tree hash (a passing tree stays passing for this process), so the check
 * costs one gate run per new main, not one per claim; a main the line itself landed costs none,
 * since the merge queue ran the tree gates on exactly that commit (see `landed`). One gap, accepted
 * for the cost: when the queue rebased a candidate, its own order's hidden scenarios ran on the
 * candidate, not on the landed tree; from then on they run on every later candidate, which would
 * find a break (and a candidate's failure then has main checked for real, see `check`'s `verify`). A failing verdict is not cached: the
 * fix is usually outside the tree (install the module), and the next start checks again. Every
 * check is recorded in the ledger, so `nightshift status` can say why the line paused.
 */
export class BaselineKeeper {
  /** Trees known to pass: "checked" by this keeper, or "landed" through the merge queue. */
  private readonly passedTrees = new Map<string, "checked" | "landed">();
  private readonly gates: Gate[];
  /** Checkouts a killed process left behind are wiped before this process's first check. */
  private wiped = false;

  constructor(
    private readonly parts: {
      ledger: Ledger;
      workspaces: Workspaces;
      gates: Gate[];
      logger: Logger;
      /** Where main is checked out for the check; default beside the run worktrees. */
      scratchDir?: string;
    },
  ) {
    // Change gates judge what an agent wrote; main itself has only a tree to judge.
    this.gates = parts.gates.filter((gate) => (gate.scope ?? "tree") === "tree");
  }

  /**
   * Checks `commit` (default: main's tip) against the tree gates. With `verify`, a tree known to
   * pass only because the merge queue landed it is checked again (a candidate failed on it).
   */
  async check(
    commit?: string,
    signal?: AbortSignal,
    options: { verify?: boolean } = {},
  ): Promise<BaselineVerdict> {
    const { workspaces, ledger, logger } = this.parts;
    const sha = commit ?? (await workspaces.mainTip());
    const tree = (await git(workspaces.repoPath, ["rev-parse", `${sha}^{tree}`])).trim();
    const known = this.passedTrees.get(tree);
    if (this.gates.length === 0 || known === "checked" || (known && !options.verify)) {
      return { passed: true, commit: sha, tree };
    }
    const cause = await this.failureOn(sha, signal);
    if (signal?.aborted) return { passed: true, commit: sha, tree };
    await ledger.acceptance.recordBaseline({
      commit: sha,
      tree,
      passed: cause === undefined,
      ...(cause ? { cause } : {}),
    });
    if (cause === undefined) {
      this.passedTrees.set(tree, "checked");
      logger.info({ commit: sha, tree }, "main passes the gates");
      return { passed: true, commit: sha, tree };
    }
    logger.error({ commit: sha, tree, cause }, "main itself fails the gates");
    return { passed: false, commit: sha, tree, cause };
  }

  /**
   * A landing moved main to `commit`: the merge queue ran every tree gate on exactly that commit
   * before it moved main (the ratchet's invariant), so its tree is known to pass and the next
   * check of main costs nothing. Recorded like any other check.
   */
  async landed(commit: string): Promise<void> {
    const tree = (
      await git(this.parts.workspaces.repoPath, ["rev-parse", `${commit}^{tree}`])
    ).trim();
    if (this.passedTrees.has(tree)) return;
    this.passedTrees.set(tree, "landed");
    await this.parts.ledger.acceptance.recordBaseline({ commit, tree, passed: true });
  }

  /** Runs the tree gates on a scratch checkout of `sha`; undefined when all pass. */
  private async failureOn(sha: string, signal?: AbortSignal): Promise<string | undefined> {
    const repo = this.parts.workspaces.repoPath;
    const scratchRoot =
      this.parts.scratchDir ?? path.join(path.dirname(this.parts.workspaces.rootDir), "baseline");
    const dir = path.join(scratchRoot, sha.slice(0, 12));
    if (!this.wiped) {
      await rm(scratchRoot, { recursive: true, force: true });
      await git(repo, ["worktree", "prune"]).catch(() => undefined);
      this.wiped = true;
    }
    await mkdir(scratchRoot, { recursive: true });
    await removeCheckout(repo, dir);
    await git(repo, ["worktree", "add", "--detach", "--quiet", dir, sha]);
    try {
      const ratchet = await runGates(this.gates, {
        workspacePath: dir,
        commit: sha,
        ...(signal ? { signal } : {}),
      });
      const failed = ratchet.outcomes.find((o) => !o.passed);
      return failed ? describeFailure(failed, sha) : undefined;
    } catch (error) {
      // A gate that cannot even give a verdict on main (its sandbox or command cannot start) is
      // as much a reason to pause as a red one.
      return `a gate could not run on main ${sha.slice(0, 10)}: ${describeError(error)}`;
    } finally {
      await removeCheckout(repo, dir);
    }
  }
}

function describeFailure(outcome: GateOutcome, sha: string): string {
  const how = outcome.timedOut ? "timed out" : `failed (exit ${outcome.exitCode})`;
  return `the ${outcome.gate} gate ${how} on main ${sha.slice(0, 10)} itself: ${tellingLine(outcome.output)}`;
}

/** The line of a gate's output that says most about why it failed. */
export function tellingLine(output: string): string {
  const lines = output
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const patterns = [
    /cannot find|not found|no such file|command not found|ERR_MODULE_NOT_FOUND/i,
    /^not ok/i,
    /error|failed|assert|expected/i,
  ];
  let pick: string | undefined;
  for (const pattern of patterns) {
    pick = lines.find((l) => pattern.test(l));
    if (pick) break;
  }
  pick ??= lines.at(-1) ?? "(no output)";
  return pick.length > 240 ? `${pick.slice(0, 237)}...` : pick;
}

async function removeCheckout(repo: string, dir: string): Promise<void> {
  await git(repo, ["worktree", "remove", "--force", "--force", dir]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  await git(repo, ["worktree", "prune"]).catch(() => undefined);
}

function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      ["-c", "core.hooksPath=/dev/null", ...args],
      { cwd, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`git ${args.join(" ")} failed: ${stderr || error.message}`));
        else resolve(stdout);
      },
    );
  });
}
