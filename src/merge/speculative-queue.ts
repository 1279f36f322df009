import { execFile } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { feedbackFrom, type Gate, GateError, type GateOutcome, runGates } from "../gates/index.ts";
import type { Workspace, Workspaces } from "../workspace/index.ts";
import type { LandingHooks, LandingResult } from "./serial-queue.ts";
import {
  type CoreAction,
  type CoreOptions,
  SpeculativeQueueCore,
  type StackVerdict,
  type TestBase,
} from "./speculative-core.ts";

/** What the line needs from a merge queue; the serial queue and this one both fit. */
export interface MergeQueue {
  land(workspace: Workspace, hooks: LandingHooks, signal?: AbortSignal): Promise<LandingResult>;
}

export interface SpeculativeQueueOptions extends CoreOptions {
  /** Scratch worktrees for the stacks under test; wiped at start (they never outlive a test). */
  scratchDir: string;
  committer?: { name: string; email: string };
  /** Told about every decision, for logs. */
  onDecision?: (decision: CoreAction) => void;
}

interface Entry {
  id: string;
  workspace: Workspace;
  /** The candidate's own commits are base..head. */
  base: string;
  head: string;
  hooks: LandingHooks;
  resolve: (result: LandingResult) => void;
  reject: (error: unknown) => void;
  lastFailure?: GateOutcome;
  conflicts?: string[];
}

interface BuiltStack {
  /** The commit the stack was built on. */
  base: string;
  tip: string;
  /** Each candidate's commit in the stack and the commit below it, in order. */
  commits: { id: string; commit: string; parent: string }[];
}

interface Test {
  id: number;
  add: string[];
  controller: AbortController;
  built: Promise<BuiltStack | undefined>;
}

const DEFAULT_COMMITTER = { name: "nightshift", email: "nightshift@localhost" };

/**
 * The speculative batched merge queue on real git: a thin adapter that carries out the decisions
 * of SpeculativeQueueCore. A test builds its stack by cherry-picking the candidates' commits onto
 * main (or onto the stack of the test it speculates on) in a scratch worktree, then runs the tree
 * gates there. Landing moves main by compare-and-swap to exactly the commit those gates passed;
 * if main moved meanwhile, every speculation is dropped and rebuilt on the new main.
 */
export class SpeculativeMergeQueue implements MergeQueue {
  private readonly core: SpeculativeQueueCore;
  private readonly entries = new Map<string, Entry>();
  private readonly tests = new Map<number, Test>();
  /** Every call into the core and every landing goes through here, one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private readonly ready: Promise<void>;
  private readonly gates: Gate[];
  private readonly committer: { name: string; email: string };

  constructor(
    private readonly workspaces: Workspaces,
    gates: Gate[],
    private readonly options: SpeculativeQueueOptions,
  ) {
    this.core = new SpeculativeQueueCore(options);
    // Change gates judged the candidate's own diff already; a rebase re-applies that same diff.
    this.gates = gates.filter((g) => (g.scope ?? "tree") === "tree");
    this.committer = options.committer ?? DEFAULT_COMMITTER;
    this.ready = this.wipeScratch();
    // A queue that never lands anything (its line refused every order, its repository went away)
    // must not leave the failure unheard; a landing still awaits `ready` and reports it.
    this.ready.catch(() => undefined);
  }

  land(workspace: Workspace, hooks: LandingHooks, signal?: AbortSignal): Promise<LandingResult> {
    return new Promise<LandingResult>((resolve, reject) => {
      const id = workspace.runId;
      const onAbort = () =>
        this.serial(async () => {
          if (!this.entries.delete(id)) return;
          await this.apply(this.core.withdraw(id));
          reject(
            new GateError("gate_aborted", "merge-queue", "the run was cancelled", "nothing to fix"),
          );
        });
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle =
        <T>(fn: (value: T) => void) =>
        (value: T) => {
          signal?.removeEventListener("abort", onAbort);
          fn(value);
        };
      this.serial(async () => {
        await this.ready;
        // Cancelled before it was queued: never enqueue it, or it could land after its order was
        // handed to another run.
        if (signal?.aborted) {
          reject(
            new GateError("gate_aborted", "merge-queue", "the run was cancelled", "nothing to fix"),
          );
          return;
        }
        const head = await this.git(workspace.path, ["rev-parse", "HEAD"]);
        this.entries.set(id, {
          id,
          workspace,
          base: workspace.baseCommit,
          head,
          hooks,
          resolve: settle(resolve),
          reject: settle(reject),
        });
        await this.apply(this.core.enqueue({ id, rounds: hooks.roundsSoFar ?? 0 }));
      }).catch(reject);
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async apply(actions: CoreAction[]): Promise<void> {
    let unlanded: string[] | undefined;
    for (const action of actions) {
      this.options.onDecision?.(action);
      switch (action.kind) {
        case "test":
          this.startTest(action.testId, action.base, action.add);
          break;
        case "cancel":
          this.tests.get(action.testId)?.controller.abort();
          break;
        case "land":
          // After a landing lost its race, the ones after it (built on it) cannot land either.
          if (unlanded) unlanded.push(...action.ids);
          else if (!(await this.landBatch(action.testId))) unlanded = [...action.ids];
          break;
        case "eject":
          this.eject(action.id, action.cause, action.reason);
          break;
      }
    }
    if (unlanded) await this.apply(this.core.reset(unlanded));
  }

  private startTest(testId: number, base: TestBase, add: string[]): void {
    const controller = new AbortController();
    const parent = base.kind === "test" ? this.tests.get(base.testId) : undefined;
    const rounds = add.map((id) => ({ id, rounds: this.core.roundsOf(id) }));
    const built = (async (): Promise<BuiltStack | undefined> => {
      // Count the round before the test can take the process down with it. A round that could
      // not be recorded is not worth failing the test for.
      for (const { id, rounds: n } of rounds) {
        await this.entries
          .get(id)
          ?.hooks.onRound?.(n)
          .catch(() => undefined);
      }
      const below = parent ? await parent.built : undefined;
      if (parent && !below) return undefined;
      const start = below?.tip ?? (await this.workspaces.mainTip());
      return this.build(testId, start, add, controller.signal);
    })();
    const test: Test = { id: testId, add, controller, built };
    this.tests.set(testId, test);
    void this.runTest(test)
      .finally(() => this.removeScratch(testId))
      .then(
        (verdict) => this.serial(async () => this.apply(this.core.report(testId, verdict))),
        () => this.serial(async () => this.apply(this.core.report(testId, { kind: "skipped" }))),
      );
  }

  /** Builds the test's stack (its candidates cherry-picked onto `start`) and runs the gates on it. */
  private async runTest(test: Test): Promise<StackVerdict> {
    let stack: BuiltStack | undefined;
    try {
      stack = await test.built;
    } catch (error) {
      if (error instanceof StackConflict) {
        const entry = this.entries.get(error.id);
        if (entry) entry.conflicts = error.paths;
        return {
          kind: "conflict",
          id: error.id,
          reason: `conflict in ${error.paths.join(", ") || "(unknown paths)"}`,
        };
      }
      throw error;
    }
    if (!stack || test.controller.signal.aborted) {
      this.tests.delete(test.id);
      return { kind: "skipped" };
    }
    const ratchet = await runGates(this.gates, {
      workspacePath: this.scratchOf(test.id),
      commit: stack.tip,
      signal: test.controller.signal,
    });
    const failed = ratchet.outcomes.find((o) => !o.passed);
    // Gate results go to the runs they are about: all of a green stack, or the one candidate of
    // a red single-candidate stack (a red batch says nothing yet about each of its members).
    const about = failed && test.add.length > 1 ? [] : test.add;
    for (const id of about) {
      const entry = this.entries.get(id);
      if (!entry) continue;
      for (const outcome of ratchet.outcomes) await entry.hooks.onGate(outcome, stack.tip);
      if (failed) entry.lastFailure = failed;
    }
    if (!failed) return { kind: "pass" };
    // A red stack never lands; only stacks built on it still need its commits, and they hold
    // their own reference to it.
    this.tests.delete(test.id);
    return { kind: "fail", reason: feedbackFrom(failed, 600) };
  }

  private async build(
    testId: number,
    start: string,
    add: string[],
    signal: AbortSignal,
  ): Promise<BuiltStack | undefined> {
    const dir = this.scratchOf(testId);
    await this.git(this.workspaces.repoPath, [
      "worktree",
      "add",
      "--detach",
      "--quiet",
      dir,
      start,
    ]);
    const commits: BuiltStack["commits"] = [];
    let tip = start;
    for (const id of add) {
      if (signal.aborted) return undefined;
      const entry = this.entries.get(id);
      if (!entry) return undefined;
      try {
        await this.git(dir, [
          "cherry-pick",
          "--allow-empty",
          "--keep-redundant-commits",
          `${entry.base}..${entry.head}`,
        ]);
      } catch {
        const paths = (
          await this.git(dir, ["diff", "--name-only", "--diff-filter=U"]).catch(() => "")
        )
          .split("\n")
          .filter(Boolean);
        await this.git(dir, ["cherry-pick", "--abort"]).catch(() => undefined);
        throw new StackConflict(id, paths);
      }
      const commit = await this.git(dir, ["rev-parse", "HEAD"]);
      commits.push({ id, commit, parent: tip });
      tip = commit;
    }
    return { base: start, tip, commits };
  }

  /** Lands a green stack: records what is about to land, then one compare-and-swap of main. */
  private async landBatch(testId: number): Promise<boolean> {
    const test = this.tests.get(testId);
    const stack = await test?.built.catch(() => undefined);
    if (!stack) return false;
    const entries = stack.commits.map((c) => ({ ...c, entry: this.entries.get(c.id) }));
    for (const { commit, parent, entry } of entries) {
      await entry?.hooks.beforeFastForward(commit, parent);
    }
    if (!(await this.workspaces.fastForwardMain(stack.base, stack.tip))) return false;
    for (const { id, commit, parent, entry } of entries) {
      this.entries.delete(id);
      entry?.resolve({ status: "landed", previousMain: parent, commit });
    }
    this.forgetTestsOf(testId);
    return true;
  }

  private eject(id: string, cause: string, reason: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    if (cause === "conflict") {
      entry.resolve({ status: "conflict", conflicts: entry.conflicts ?? [reason] });
      return;
    }
    entry.resolve({
      status: "rejected",
      failed: entry.lastFailure ?? {
        gate: "merge-queue",
        passed: false,
        exitCode: null,
        output: `ejected from the merge queue: ${reason}`,
        durationMs: 0,
        timedOut: false,
      },
    });
  }

  /** Tests up to a landed one can no longer land: forget them (their commits stay in git). */
  private forgetTestsOf(landedTestId: number): void {
    for (const testId of this.tests.keys()) if (testId <= landedTestId) this.tests.delete(testId);
  }

  private scratchOf(testId: number): string {
    return path.join(this.options.scratchDir, `test-${testId}`);
  }

  private async removeScratch(testId: number): Promise<void> {
    await this.git(this.workspaces.repoPath, [
      "worktree",
      "remove",
      "--force",
      this.scratchOf(testId),
    ]).catch(() => rm(this.scratchOf(testId), { recursive: true, force: true }));
  }

  private async wipeScratch(): Promise<void> {
    await rm(this.options.scratchDir, { recursive: true, force: true });
    await mkdir(this.options.scratchDir, { recursive: true });
    await this.git(this.workspaces.repoPath, ["worktree", "prune"]);
  }

  private git(cwd: string, args: string[]): Promise<string> {
    const env = {
      ...process.env,
      LC_ALL: "C",
      GIT_COMMITTER_NAME: this.committer.name,
      GIT_COMMITTER_EMAIL: this.committer.email,
    };
    // Same reasons as workspace/git.ts: no user hooks, no signing prompts, no auto-gc pauses.
    const forced = [
      "-c",
      "core.hooksPath=/dev/null",
      "-c",
      "commit.gpgSign=false",
      "-c",
      "gc.auto=0",
    ];
    return new Promise((resolve, reject) => {
      execFile(
        "git",
        [...forced, ...args],
        { cwd, env, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`git ${args.join(" ")}: ${stderr || error.message}`));
          else resolve(stdout.trim());
        },
      );
    });
  }
}

class StackConflict extends Error {
  constructor(
    readonly id: string,
    readonly paths: string[],
  ) {
    super(`candidate ${id} does not apply: ${paths.join(", ")}`);
  }
}
