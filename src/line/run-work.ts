import { type AgentDriver, type AgentResult, buildPrompt } from "../agents/index.ts";
import { describeError } from "../errors/index.ts";
import { type GateOutcome, runGates } from "../gates/index.ts";
import type { Claim, Run, RunEnding, WorkOrder } from "../ledger/index.ts";
import type { RunSandbox } from "../sandbox/index.ts";
import type { Workspace } from "../workspace/index.ts";
import type { LineContext } from "./context.ts";
import type { RunEndings } from "./endings.ts";
import type { RunBody } from "./foreman.ts";
import type { MainGuard } from "./main-guard.ts";
import type { BudgetStop, ModelFailure } from "./parts.ts";
import { RunRecorder } from "./run-recorder.ts";
import { SandboxWatch } from "./sandbox-watch.ts";
import { DEFAULT_WATCHDOG, type Meltdown, Watchdog } from "./watchdog.ts";

const AUTHOR = { authorName: "nightshift agent", authorEmail: "agent@nightshift.invalid" };

/**
 * One run's work, station by station: the agent in its sandboxed worktree, the candidate through
 * the gates, then the merge queue. Knows agents, gates and sandboxes only by their interfaces.
 */
export class RunWork {
  constructor(
    private readonly ctx: LineContext,
    private readonly endings: RunEndings,
    private readonly main: MainGuard,
  ) {}

  /** A claimed run from the start: a fresh worktree, the agent, the gates, the merge queue. */
  fromClaim(claim: Claim): RunBody {
    const { order, run } = claim;
    return async (signal, hold) => {
      await this.ctx.progress.report(order, {
        runId: run.id,
        attempt: run.attempt,
        state: "running",
        message: `attempt ${run.attempt}`,
      });
      const workspace = await this.ctx.parts.workspaces.create(String(run.id));
      hold(workspace);
      return this.attempt(claim, workspace, signal);
    };
  }

  /** An adopted run's candidate back in the merge queue: the queue's verdict ends the run. */
  backInQueue(order: WorkOrder, run: Run, workspace: Workspace): RunBody {
    return async (signal, hold) => {
      hold(workspace);
      // Called before anything is awaited, so the queue gets the adopted candidates in order.
      const landing = this.landCandidate(order, run, workspace, signal);
      await this.ctx.progress.report(order, {
        runId: run.id,
        attempt: run.attempt,
        state: "merging",
        message: "back in the merge queue after a restart",
      });
      return landing;
    };
  }

  private async attempt(
    claim: Claim,
    workspace: Workspace,
    signal: AbortSignal,
  ): Promise<RunEnding> {
    const { ledger } = this.ctx.parts;
    const { order, run } = claim;
    await ledger.setRunPhase(run.id, "agent", {
      workspace_path: workspace.path,
      branch: workspace.branch,
      base_commit: workspace.baseCommit,
    });
    let driver: AgentDriver;
    try {
      driver = this.ctx.parts.drivers.get(run.agent);
    } catch (error) {
      // Every retry would fail alike: the order fails now, for a person to fix its driver.
      return {
        outcome: "failed",
        runStatus: "failed",
        reason: `cannot start agent driver "${run.agent}": ${describeError(error)}`,
      };
    }
    await this.ctx.progress.report(order, {
      runId: run.id,
      attempt: run.attempt,
      state: "agent",
      message: `${run.agent} agent working with ${run.model}`,
    });
    const result = await this.runAgent(claim, driver, workspace, signal);
    if (result.meltdown) return this.endings.meltdown(order, result.meltdown);
    if (result.budget) return this.endings.budget(order, result.budget);
    if (result.failure && result.reason === "error") {
      return this.endings.modelFailure(order, result.failure, result.summary);
    }
    if (result.reason !== "completed") {
      return this.endings.retryOrFail(
        order,
        "failed",
        `agent stopped (${result.reason}): ${result.summary}`,
        `The agent stopped before finishing: ${result.reason}: ${result.summary}`,
      );
    }
    const candidate = await this.ctx.parts.workspaces.commitAll(workspace, {
      message: `${order.title}\n\nWork-Order: WO-${order.id}\nRun: ${run.id}\n`,
      ...AUTHOR,
    });
    if (!candidate) {
      // An agent may end "completed" after its model failed (a CLI printing the error as its
      // answer): the failure, not the empty change, is why.
      if (result.failure) return this.endings.modelFailure(order, result.failure, result.summary);
      return this.endings.retryOrFail(
        order,
        "failed",
        `agent made no changes: ${result.summary}`,
        `The previous attempt ended without changing any file. Its last words: ${result.summary}`,
      );
    }
    await ledger.setRunPhase(run.id, "gates", { candidate_commit: candidate });
    await this.ctx.progress.report(order, {
      runId: run.id,
      attempt: run.attempt,
      state: "gates",
      message: `candidate ${candidate.slice(0, 10)}`,
    });
    let modelOpened = false;
    const ratchet = await runGates(this.ctx.parts.gates, {
      workspacePath: workspace.path,
      commit: candidate,
      signal,
      // Change gates measure the candidate against the main it was made on; the reviewer reads
      // the order and asks its model through the gateway, metered to this run.
      base: workspace.baseCommit,
      order: { id: order.id, title: order.title, spec: order.spec, acceptance: order.acceptance },
      model: () => {
        modelOpened = true;
        return this.ctx.parts.models.openRun({ runId: run.id, orderId: order.id });
      },
    }).finally(async () => {
      // The gates' key is closed like the agent's, so its spend is written out and it stops working.
      if (modelOpened) await this.ctx.parts.models.closeRun(run.id);
    });
    for (const outcome of ratchet.outcomes)
      await this.recordGate(run.id, "candidate", candidate, outcome);
    const failed = ratchet.outcomes.find((o) => !o.passed);
    if (failed) {
      const blame = await this.main.blameMain(failed, workspace.baseCommit, signal);
      return blame ?? this.endings.rejected(order, failed, workspace);
    }

    // On a shared remote, the candidate must outlive this host: whoever takes the run over lands it.
    await this.ctx.parts.workspaces.publish(workspace, candidate);
    await ledger.setRunPhase(run.id, "merging");
    await this.ctx.progress.report(order, {
      runId: run.id,
      attempt: run.attempt,
      state: "merging",
      message: "in the merge queue",
    });
    return this.landCandidate(order, run, workspace, signal);
  }

  /** Sends a gate-passed candidate through the merge queue; how its run ends. */
  private async landCandidate(
    order: WorkOrder,
    run: Run,
    workspace: Workspace,
    signal: AbortSignal,
  ): Promise<RunEnding> {
    const { ledger } = this.ctx.parts;
    const landing = await this.ctx.queue.land(
      workspace,
      {
        onGate: (outcome, commit) => this.recordGate(run.id, "merge", commit, outcome),
        beforeFastForward: (commit, previousMain) =>
          ledger.setRunFacts(run.id, { merge_commit: commit, base_commit: previousMain }),
        onRound: (rounds) => ledger.recordQueueRound(run.id, rounds),
        roundsSoFar: run.queue_rounds,
        // A pull-request output describes the order.
        order,
      },
      signal,
    );
    switch (landing.status) {
      case "landed":
        return {
          outcome: "landed",
          reason: `landed as ${landing.commit.slice(0, 10)}`,
          previousMain: landing.previousMain,
          landedCommit: landing.commit,
        };
      case "proposed":
        return {
          outcome: "proposed",
          reason: `proposed as ${landing.url}`,
          pullRequestUrl: landing.url,
        };
      case "conflict":
        return this.endings.retryOrFail(
          order,
          "rejected",
          `conflict with main in ${landing.conflicts.join(", ")}`,
          `Your change conflicted with changes that landed on main meanwhile, in: ${landing.conflicts.join(", ")}. Redo the work on the current main.`,
        );
      case "rejected":
        return this.endings.rejected(order, landing.failed, workspace, "after rebasing onto main");
      default: {
        const unreachable: never = landing;
        throw new Error(`unknown landing ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private async runAgent(
    claim: Claim,
    driver: AgentDriver,
    workspace: Workspace,
    signal: AbortSignal,
  ): Promise<
    AgentResult & {
      budget: BudgetStop | undefined;
      failure: ModelFailure | undefined;
      meltdown: Meltdown | undefined;
    }
  > {
    const { order, run } = claim;
    const recorder = new RunRecorder(this.ctx.parts.ledger, run.id);
    const prompt = buildPrompt({
      id: order.id,
      title: order.title,
      spec: order.spec,
      acceptance: order.acceptance,
      scope: order.scope,
      attempt: run.attempt,
      feedback: order.feedback,
      testCommand: this.ctx.settings.testCommand,
    });
    const endpoint = await this.ctx.parts.models.openRun({ runId: run.id, orderId: order.id });
    const watchdog = new Watchdog(
      this.ctx.parts.ledger,
      { runId: run.id, orderId: order.id },
      recorder.record,
      this.ctx.settings.watchdog ?? DEFAULT_WATCHDOG,
      signal,
    );
    const watch = new SandboxWatch(
      this.ctx.parts.ledger,
      { runId: run.id, orderId: order.id },
      watchdog.record,
      this.ctx.parts.sandboxDefectAfter ?? 3,
    );
    let sandbox: RunSandbox | undefined;
    let result: AgentResult;
    let budget: BudgetStop | undefined;
    let failure: ModelFailure | undefined;
    // A person may have overridden [budget] max_tokens_per_run live (nightshift budget set): the
    // agent's own stop follows the limit the gateway applies. One small read per run.
    const tokensPerRun = await this.ctx.parts.ledger.budgetLimits
      .overrides()
      .then((o) => o.overrides.max_tokens_per_run?.value ?? this.ctx.settings.maxTokensPerRun)
      .catch(() => this.ctx.settings.maxTokensPerRun);
    try {
      sandbox = await this.openSandbox(workspace, endpoint, watch);
      const task = {
        prompt,
        workspacePath: workspace.path,
        model: run.model,
        endpoint,
        maxSteps: this.ctx.settings.maxSteps,
        maxTokens: order.budget_tokens ?? tokensPerRun,
        commandTimeoutMs: this.ctx.settings.commandTimeoutMs,
        ...(sandbox ? { sandbox } : {}),
      };
      result = await driver.run(task, watch.record, watchdog.signal);
    } finally {
      watchdog.stop();
      await sandbox?.dispose();
      ({ refusal: budget, failure } = await this.ctx.parts.models.closeRun(run.id));
      await watchdog.close();
      await watch.settled();
    }
    recorder.record({ kind: "done", reason: result.reason, summary: result.summary });
    await recorder.flush();
    return { ...result, budget, failure, meltdown: watchdog.meltdown };
  }

  /** The run's sandbox over its worktree, with the gateway as its only way out. */
  private async openSandbox(
    workspace: Workspace,
    endpoint: { baseURL: string; apiKey: string },
    watch: SandboxWatch,
  ): Promise<RunSandbox | undefined> {
    if (!this.ctx.parts.sandbox) {
      watch.onSandboxEvent({
        kind: "unsandboxed",
        message: "WARNING: this line has no sandbox backend; the run's commands are not isolated",
      });
      return undefined;
    }
    return this.ctx.parts.sandbox.create({
      workspacePath: workspace.path,
      gateway: { url: endpoint.baseURL, apiKey: endpoint.apiKey },
      onEvent: watch.onSandboxEvent,
    });
  }

  private async recordGate(
    runId: number,
    stage: "candidate" | "merge",
    commit: string,
    outcome: GateOutcome,
  ) {
    await this.ctx.parts.ledger.recordGate({
      run_id: runId,
      gate: outcome.gate,
      stage,
      commit_sha: commit,
      passed: outcome.passed,
      exit_code: outcome.exitCode,
      timed_out: outcome.timedOut,
      output: outcome.output,
      duration_ms: Math.round(outcome.durationMs),
    });
  }
}
