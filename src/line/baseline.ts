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
 * costs one gate run per new main, not one per claim. A failing verdict is not cached: the fix is
 * usually outside the tree (install the module), and the next start checks again. Every check is
 * recorded in the ledger, so `nightshift status` can say why the line paused.
 */
export class BaselineKeeper {
  private readonly passedTrees = new Set<string>();
  private readonly gates: Gate[];

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

  /** Checks `commit` (default: main's tip) against the tree gates. */
  async check(commit?: string, signal?: AbortSignal): Promise<BaselineVerdict> {
    const { workspaces, ledger, logger } = this.parts;
    const sha = commit ?? (await workspaces.mainTip());
    const tree = (await git(workspaces.repoPath, ["rev-parse", `${sha}^{tree}`])).trim();
    if (this.gates.length === 0 || this.passedTrees.has(tree)) {
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
      this.passedTrees.add(tree);
      logger.info({ commit: sha, tree }, "main passes the gates");
      return { passed: true, commit: sha, tree };
    }
    logger.error({ commit: sha, tree, cause }, "main itself fails the gates");
    return { passed: false, commit: sha, tree, cause };
  }

  /** Runs the tree gates on a scratch checkout of `sha`; undefined when all pass. */
  private async failureOn(sha: string, signal?: AbortSignal): Promise<string | undefined> {
    const repo = this.parts.workspaces.repoPath;
    const scratchRoot =
      this.parts.scratchDir ?? path.join(path.dirname(this.parts.workspaces.rootDir), "baseline");
    const dir = path.join(scratchRoot, sha.slice(0, 12));
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
