import { execFile } from "node:child_process";
import type { Logger } from "pino";
import {
  type AgentDriver,
  type AgentResult,
  buildPrompt,
  type ModelEndpoint,
} from "../agents/index.ts";
import { describeError } from "../errors/index.ts";
import { feedbackFrom, type Gate, type GateOutcome, runGates } from "../gates/index.ts";
import type { Claim, Ledger, Run, RunEnding, WorkOrder } from "../ledger/index.ts";
import { type MergeQueue, SerialMergeQueue } from "../merge/index.ts";
import type { RunSandbox, SandboxBackend } from "../sandbox/index.ts";
import type { Workspace, Workspaces } from "../workspace/index.ts";
import { Alarm } from "./alarm.ts";
import { BaselineKeeper } from "./baseline.ts";
import { pausedByPerson } from "./pause.ts";
import type { LineProgress, ProgressListener } from "./progress.ts";
import { RunRecorder } from "./run-recorder.ts";
import { SandboxWatch } from "./sandbox-watch.ts";
import { Timekeeper } from "./timekeeper.ts";

export interface LineSettings {
  concurrency: number;
  maxAttempts: number;
  pollIntervalMs: number;
  leaseMs: number;
  /** The agent driver for an order that names none. */
  driver: string;
  /** The model for an order that names none. */
  model: string;
  maxSteps: number;
  maxTokensPerRun: number;
  commandTimeoutMs: number;
  testCommand: string;
}

/** Why the gateway refused a run's request: which budget ran out. */
export interface BudgetStop {
  scope: "run" | "order" | "day" | "total";
  message: string;
}

/** The last model request of the run that failed for a reason outside the agent's control. */
export interface ModelFailure {
  /** HTTP status the agent got. */
  status: number;
  /**
   * "gateway": nightshift refused (no provider routes the model, unknown price, ...); "provider":
   * the upstream service answered with an error or could not be reached.
   */
  from: "gateway" | "provider";
  /** The gateway's or provider's own message, e.g. "invalid x-api-key" or "model: claude-x not found". */
  message: string;
  /**
   * True when every later run would fail the same way (auth, unknown model, no route, provider
   * unreachable after retries); false for one-off errors.
   */
  blocking: boolean;
}

/** The line's view of the gateway: a scoped endpoint per run, and why a run's spending stopped. */
export interface ModelAccess {
  openRun(grant: { runId: number; orderId: number }): Promise<ModelEndpoint>;
  /**
   * Revokes the run's key once its spend is recorded. Says whether a budget stopped the run, and
   * whether its last model request failed for a reason outside the agent's control.
   */
  closeRun(
    runId: number,
  ): Promise<{ refusal: BudgetStop | undefined; failure?: ModelFailure | undefined }>;
}

/** The agent drivers a line can run, by name (an order may name its own; see LineSettings.driver). */
export interface AgentDrivers {
  /** Throws (a NightshiftError with the fix) when the driver cannot be had. */
  get(name: string): AgentDriver;
}

/**
 * A model failure as a person reads it, in the gateway's words rather than an agent's paraphrase
 * (Claude Code says "There's an issue with the selected model" for a bad key as for a bad name).
 */
export function describeModelFailure(failure: ModelFailure): string {
  const what =
    failure.from === "gateway"
      ? "the gateway refused the request"
      : failure.status >= 400 && failure.status < 500
        ? "the model provider refused the request"
        : "the model provider failed";
  // A message that already starts with its status ("401: invalid x-api-key") says it once.
  const message = failure.message.replace(new RegExp(`^${failure.status}:\\s*`), "");
  return `${what} (${failure.status}): ${message}`;
}

export interface LineParts {
  ledger: Ledger;
  workspaces: Workspaces;
  /** Each run's driver, by the name its run records (the order's own, or settings.driver). */
  drivers: AgentDrivers;
  gates: Gate[];
  /** Hands each run its model endpoint and scoped key (the gateway). */
  models: ModelAccess;
  logger: Logger;
  workerId: string;
  /** Takes in orders that arrived outside the ledger (see orders/Inbox), before each claim round. */
  intake?: () => Promise<void>;
  /** True when no other worker can share the ledger (embedded): every running run is ours. */
  soleWorker: boolean;
  /** Lands green candidates; default the serial queue (one candidate at a time). */
  mergeQueue?: MergeQueue;
  /** Every run's commands run in a sandbox of this backend; without one, every run warns. */
  sandbox?: SandboxBackend;
  /** Blocked attempts in one run that raise a defect (default 3). */
  sandboxDefectAfter?: number;
  /** Where main is checked out to be checked against the gates (default beside the worktrees). */
  baselineDir?: string;
}

const AUTHOR = { authorName: "nightshift agent", authorEmail: "agent@nightshift.invalid" };
/**
 * A candidate taken over from a dead worker this many times is not adopted again: it may be what
 * takes the factory down. Its order gets a fresh run instead.
 */
const MAX_ADOPTIONS = 3;

/**
 * The line: claims work orders, runs an agent on each in its own worktree, sends the candidate
 * through the gates and the merge queue, and records every step in the ledger. It knows agents,
 * gates and sandboxes only by their interfaces.
 */
export class Line {
  private readonly queue: MergeQueue;
  private readonly active = new Map<number, Promise<void>>();
  private readonly listeners: ProgressListener[] = [];
  /**
   * Set when a factory-wide budget ran out, or a model request failed in a way every later run
   * would too: no new runs start.
   */
  private halted: string | undefined;
  private readonly baseline: BaselineKeeper;
  /** Ends the idle wait early on a wake-up from the ledger. */
  private readonly alarm = new Alarm();

  constructor(
    private readonly parts: LineParts,
    private readonly settings: LineSettings,
  ) {
    this.queue = parts.mergeQueue ?? new SerialMergeQueue(parts.workspaces, parts.gates);
    this.baseline = new BaselineKeeper({
      ledger: parts.ledger,
      workspaces: parts.workspaces,
      gates: parts.gates,
      logger: parts.logger,
      ...(parts.baselineDir ? { scratchDir: parts.baselineDir } : {}),
    });
  }

  /** Why the line stopped taking work before its queue was empty, if it did. */
  get haltedBecause(): string | undefined {
    return this.halted;
  }

  onProgress(listener: ProgressListener): void {
    this.listeners.push(listener);
  }

  /**
   * Works the queue until it is empty (or, with `forever`, until `signal` aborts). On abort, runs
   * in flight are cancelled and their orders go back to the queue.
   */
  async run(options: { forever?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const signal = options.signal ?? new AbortController().signal;
    await this.parts.workspaces.assertSafeToLand();
    const unsubscribe = await this.listen();
    try {
      await this.recover(signal);
      const timekeeper = new Timekeeper({
        ledger: this.parts.ledger,
        workerId: this.parts.workerId,
        logger: this.parts.logger,
        takeBack: () => this.recover(signal, { expiredOnly: true }),
      });
      const stopped = aborted(signal);
      let claim = true;
      while (!signal.aborted) {
        await timekeeper.tick();
        if (claim || this.active.size === 0) await this.fillSlots(signal);
        if (this.active.size === 0) {
          if (!options.forever || this.halted) break;
          this.parts.logger.debug("idle: waiting for a wake-up or the next poll");
        }
        // Busy or idle, the loop turns at least once per poll interval: the timekeeper's promise
        // (lease plus one poll) must hold while this worker's own runs take their time. A busy
        // line claims again only when one of its runs ended, as before: a claim round checks
        // main, and between a landing and its run's settling that would test a main the merge
        // queue has already tested.
        const woke = await this.alarm.wait(this.settings.pollIntervalMs, [
          ...this.active.values(),
          stopped,
        ]);
        claim = woke === "settled";
      }
      await Promise.allSettled(this.active.values());
      if (signal.aborted) await this.recover(undefined, { park: true });
    } finally {
      await unsubscribe();
    }
  }

  /** Subscribes the alarm to the ledger's wake-ups; without them the line polls alone. */
  private async listen(): Promise<() => Promise<void>> {
    const { ledger, logger } = this.parts;
    try {
      return await ledger.onWork(this.alarm.ring, (error) =>
        logger.warn({ err: error }, "lost the ledger's wake-ups; finding work by polling"),
      );
    } catch (error) {
      logger.warn({ err: error }, "no wake-ups from the ledger; finding work by polling");
      return async () => {};
    }
  }

  private async fillSlots(signal: AbortSignal): Promise<void> {
    await this.parts.intake?.();
    for (const order of await this.parts.ledger.failBlockedOrders()) {
      await this.report(order, { state: "failed", message: order.failure_reason ?? "blocked" });
    }
    if (await pausedByPerson(this.parts.ledger, this.parts.logger)) return;
    // Before the first claim and after every landing (a new main): main itself must pass.
    if (!this.halted && !signal.aborted && !(await this.mainPasses(signal))) return;
    while (this.active.size < this.settings.concurrency && !signal.aborted && !this.halted) {
      const claim = await this.parts.ledger.claimNext({
        workerId: this.parts.workerId,
        leaseMs: this.settings.leaseMs,
        agent: this.settings.driver,
        model: this.settings.model,
      });
      if (!claim) return;
      const runId = claim.run.id;
      const work = this.work(claim, signal).finally(() => this.active.delete(runId));
      this.active.set(runId, work);
    }
  }

  /**
   * Startup (and shutdown) recovery: runs left by a dead worker are landed or requeued. At
   * start-up (`lineSignal` given) a run that died in the merge queue with a gate-passed candidate
   * is adopted instead: its candidate goes back in the queue, in its old order, and is landed or
   * ejected like any other, without a new agent run. With `expiredOnly` (the timekeeper, while the
   * line works) the same happens to other workers' runs whose lease ran out, and to no others.
   */
  private async recover(
    lineSignal?: AbortSignal,
    options: { park?: boolean; expiredOnly?: boolean } = {},
  ): Promise<void> {
    const { ledger, workspaces, logger } = this.parts;
    const onMain = async (commit: string) =>
      workspaces.isAncestor(commit, await workspaces.mainTip()).catch(() => false);
    const recovered = await ledger.recoverRuns({
      ...(options.expiredOnly
        ? { all: false, exceptWorker: this.parts.workerId }
        : { all: this.parts.soleWorker, workerId: this.parts.workerId }),
      hasLanded: onMain,
      ...(options.park ? { park: true } : {}),
      ...(lineSignal
        ? {
            adopt: {
              workerId: this.parts.workerId,
              leaseMs: this.settings.leaseMs,
              maxAdoptions: MAX_ADOPTIONS,
              canResume: async (run: Run) =>
                run.candidate_commit !== null &&
                (await workspaces
                  .isAncestor(run.candidate_commit, await workspaces.mainTip())
                  .then((landed) => !landed)
                  .catch(() => false)),
            },
          }
        : {}),
    });
    const adopted: Run[] = [];
    for (const { run, outcome } of recovered) {
      logger.warn({ runId: run.id, orderId: run.order_id, outcome }, "recovered a run");
      if (outcome === "adopted") {
        adopted.push(run);
        continue;
      }
      const order = await ledger.getOrder(run.order_id);
      if (order) {
        await this.report(order, {
          runId: run.id,
          state: outcome === "landed" ? "landed" : outcome === "parked" ? "merging" : "abandoned",
          message:
            outcome === "parked"
              ? "left in the merge queue for the next start"
              : (run.outcome_reason ?? outcome),
        });
      }
    }
    // This line's own runs count as live until they have settled: one that just ended may still
    // be releasing (or keeping) its worktree when the timekeeper prunes.
    const live = new Set([
      ...(await ledger.listRuns()).filter((r) => r.status === "running").map((r) => String(r.id)),
      ...[...this.active.keys()].map(String),
    ]);
    await workspaces.prune(live);
    // In queue order: each candidate is handed to the queue before the next one's worktree is made.
    for (const run of adopted) if (lineSignal) await this.readmit(run, lineSignal);
  }

  /** Puts an adopted run's candidate back in the merge queue and sees it through. */
  private async readmit(run: Run, lineSignal: AbortSignal): Promise<void> {
    const { ledger, workspaces, logger } = this.parts;
    const log = logger.child({ orderId: run.order_id, runId: run.id, attempt: run.attempt });
    const order = await ledger.getOrder(run.order_id);
    let workspace: Workspace | undefined;
    let failure: unknown;
    try {
      if (order && run.candidate_commit) {
        workspace = await workspaces.resume(String(run.id), run.candidate_commit);
      }
    } catch (error) {
      failure = error;
    }
    if (!order || !workspace) {
      const why = `could not put candidate ${run.candidate_commit?.slice(0, 10)} back in the merge queue after a restart${failure ? ` (${describeError(failure)})` : ""}`;
      log.warn({ err: failure }, why);
      const abandoned = await ledger.abandon(run.id, why);
      if (order && abandoned) {
        await this.report(order, { runId: run.id, state: "abandoned", message: why });
      }
      return;
    }
    log.info({ candidate: run.candidate_commit }, "candidate back in the merge queue");
    const work = this.resumeLanding(order, run, workspace, lineSignal).finally(() =>
      this.active.delete(run.id),
    );
    this.active.set(run.id, work);
  }

  /** The rest of an adopted run: the queue's verdict, then the run's end as in `work`. */
  private resumeLanding(
    order: WorkOrder,
    run: Run,
    workspace: Workspace,
    lineSignal: AbortSignal,
  ): Promise<void> {
    return this.supervise(order, run, lineSignal, async (signal, hold) => {
      hold(workspace);
      // Called before anything is awaited, so the queue gets the adopted candidates in order.
      const landing = this.landCandidate(order, run, workspace, signal);
      await this.report(order, {
        runId: run.id,
        attempt: run.attempt,
        state: "merging",
        message: "back in the merge queue after a restart",
      });
      return landing;
    });
  }

  /** One run of one order, start to end. Never throws: every failure ends the run with a reason. */
  private work(claim: Claim, lineSignal: AbortSignal): Promise<void> {
    const { order, run } = claim;
    return this.supervise(order, run, lineSignal, async (signal, hold) => {
      await this.report(order, {
        runId: run.id,
        attempt: run.attempt,
        state: "running",
        message: `attempt ${run.attempt}`,
      });
      const workspace = await this.parts.workspaces.create(String(run.id));
      hold(workspace);
      return this.attempt(claim, workspace, signal);
    });
  }

  /**
   * Runs `body` as one run under its lease, stopped when the line stops, and settles the run
   * however it ends: an unexpected failure ends it with the error as its reason. `body` is called
   * before anything is awaited, and hands over the run's workspace so it is released afterwards.
   */
  private async supervise(
    order: WorkOrder,
    run: Run,
    lineSignal: AbortSignal,
    body: (signal: AbortSignal, hold: (workspace: Workspace) => void) => Promise<RunEnding>,
  ): Promise<void> {
    const log = this.parts.logger.child({ orderId: order.id, runId: run.id, attempt: run.attempt });
    const controller = new AbortController();
    const stopRun = () => controller.abort();
    lineSignal.addEventListener("abort", stopRun, { once: true });
    const heartbeat = this.keepLease(run.id, controller);
    let workspace: Workspace | undefined;
    let ending: RunEnding;
    try {
      ending = await body(controller.signal, (held) => {
        workspace = held;
      });
    } catch (error) {
      log.error({ err: error }, "run failed unexpectedly");
      ending = this.retryOrFail(
        order,
        "failed",
        `internal error: ${describeError(error)}`,
        describeError(error),
      );
    } finally {
      clearInterval(heartbeat);
      lineSignal.removeEventListener("abort", stopRun);
    }
    await this.settle(run, workspace, ending, controller.signal.aborted, log);
  }

  /** Records how a run ended and moves its order on (or, if it was stopped, leaves it to recovery). */
  private async settle(
    run: Run,
    workspace: Workspace | undefined,
    ending: RunEnding,
    stopped: boolean,
    log: Logger,
  ): Promise<void> {
    const { ledger } = this.parts;
    if (stopped) {
      // Shutdown or a lost lease: recovery decides (requeue, or keep the candidate queued for the
      // next start), and its pruning removes what is no longer needed. Removing the branch here
      // would throw away a queued candidate, or pull it from under the worker that took it over.
      return;
    }
    try {
      const { order: after } = await ledger.finishRun(run.id, ending);
      if (ending.outcome === "landed") await this.baseline.landed(ending.landedCommit);
      if (workspace) {
        await this.parts.workspaces.release(workspace, { keep: ending.outcome !== "landed" });
      }
      log.info({ outcome: ending.outcome, reason: ending.reason }, "run finished");
      if (after.status === "failed") await this.fileDefect(after, run.id);
      await this.report(after, {
        runId: run.id,
        attempt: run.attempt,
        state: after.status,
        message: ending.reason,
      });
    } catch (error) {
      log.error({ err: error }, "could not record the end of a run");
    }
  }

  private async attempt(
    claim: Claim,
    workspace: Workspace,
    signal: AbortSignal,
  ): Promise<RunEnding> {
    const { ledger } = this.parts;
    const { order, run } = claim;
    await ledger.setRunPhase(run.id, "agent", {
      workspace_path: workspace.path,
      branch: workspace.branch,
      base_commit: workspace.baseCommit,
    });
    let driver: AgentDriver;
    try {
      driver = this.parts.drivers.get(run.agent);
    } catch (error) {
      // Every retry would fail alike: the order fails now, for a person to fix its driver.
      return {
        outcome: "failed",
        runStatus: "failed",
        reason: `cannot start agent driver "${run.agent}": ${describeError(error)}`,
      };
    }
    await this.report(order, {
      runId: run.id,
      attempt: run.attempt,
      state: "agent",
      message: `${run.agent} agent working with ${run.model}`,
    });
    const result = await this.runAgent(claim, driver, workspace, signal);
    if (result.budget) return this.budgetEnding(order, result.budget);
    if (result.failure && result.reason === "error") {
      return this.modelFailureEnding(order, result.failure, result.summary);
    }
    if (result.reason !== "completed") {
      return this.retryOrFail(
        order,
        "failed",
        `agent stopped (${result.reason}): ${result.summary}`,
        `The agent stopped before finishing: ${result.reason}: ${result.summary}`,
      );
    }
    const candidate = await this.parts.workspaces.commitAll(workspace, {
      message: `${order.title}\n\nWork-Order: WO-${order.id}\nRun: ${run.id}\n`,
      ...AUTHOR,
    });
    if (!candidate) {
      // An agent may end "completed" after its model failed (a CLI printing the error as its
      // answer): the failure, not the empty change, is why.
      if (result.failure) return this.modelFailureEnding(order, result.failure, result.summary);
      return this.retryOrFail(
        order,
        "failed",
        `agent made no changes: ${result.summary}`,
        `The previous attempt ended without changing any file. Its last words: ${result.summary}`,
      );
    }
    await ledger.setRunPhase(run.id, "gates", { candidate_commit: candidate });
    await this.report(order, {
      runId: run.id,
      attempt: run.attempt,
      state: "gates",
      message: `candidate ${candidate.slice(0, 10)}`,
    });
    let modelOpened = false;
    const ratchet = await runGates(this.parts.gates, {
      workspacePath: workspace.path,
      commit: candidate,
      signal,
      // Change gates measure the candidate against the main it was made on; the reviewer reads
      // the order and asks its model through the gateway, metered to this run.
      base: workspace.baseCommit,
      order: { id: order.id, title: order.title, spec: order.spec, acceptance: order.acceptance },
      model: () => {
        modelOpened = true;
        return this.parts.models.openRun({ runId: run.id, orderId: order.id });
      },
    }).finally(async () => {
      // The gates' key is closed like the agent's, so its spend is written out and it stops working.
      if (modelOpened) await this.parts.models.closeRun(run.id);
    });
    for (const outcome of ratchet.outcomes)
      await this.recordGate(run.id, "candidate", candidate, outcome);
    const failed = ratchet.outcomes.find((o) => !o.passed);
    if (failed) {
      const blame = await this.blameMain(failed, workspace.baseCommit, signal);
      return blame ?? this.rejected(order, failed, workspace);
    }

    await ledger.setRunPhase(run.id, "merging");
    await this.report(order, {
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
    const { ledger } = this.parts;
    const landing = await this.queue.land(
      workspace,
      {
        onGate: (outcome, commit) => this.recordGate(run.id, "merge", commit, outcome),
        beforeFastForward: (commit, previousMain) =>
          ledger.setRunFacts(run.id, { merge_commit: commit, base_commit: previousMain }),
        onRound: (rounds) => ledger.recordQueueRound(run.id, rounds),
        roundsSoFar: run.queue_rounds,
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
      case "conflict":
        return this.retryOrFail(
          order,
          "rejected",
          `conflict with main in ${landing.conflicts.join(", ")}`,
          `Your change conflicted with changes that landed on main meanwhile, in: ${landing.conflicts.join(", ")}. Redo the work on the current main.`,
        );
      case "rejected":
        return this.rejected(order, landing.failed, workspace, "after rebasing onto main");
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
  ): Promise<AgentResult & { budget: BudgetStop | undefined; failure: ModelFailure | undefined }> {
    const { order, run } = claim;
    const recorder = new RunRecorder(this.parts.ledger, run.id);
    const prompt = buildPrompt({
      id: order.id,
      title: order.title,
      spec: order.spec,
      acceptance: order.acceptance,
      scope: order.scope,
      attempt: run.attempt,
      feedback: order.feedback,
      testCommand: this.settings.testCommand,
    });
    const endpoint = await this.parts.models.openRun({ runId: run.id, orderId: order.id });
    const watch = new SandboxWatch(
      this.parts.ledger,
      { runId: run.id, orderId: order.id },
      recorder.record,
      this.parts.sandboxDefectAfter ?? 3,
    );
    let sandbox: RunSandbox | undefined;
    let result: AgentResult;
    let budget: BudgetStop | undefined;
    let failure: ModelFailure | undefined;
    try {
      sandbox = await this.openSandbox(workspace, endpoint, watch);
      const task = {
        prompt,
        workspacePath: workspace.path,
        model: run.model,
        endpoint,
        maxSteps: this.settings.maxSteps,
        maxTokens: order.budget_tokens ?? this.settings.maxTokensPerRun,
        commandTimeoutMs: this.settings.commandTimeoutMs,
        ...(sandbox ? { sandbox } : {}),
      };
      result = await driver.run(task, watch.record, signal);
    } finally {
      await sandbox?.dispose();
      ({ refusal: budget, failure } = await this.parts.models.closeRun(run.id));
      await watch.settled();
    }
    recorder.record({ kind: "done", reason: result.reason, summary: result.summary });
    await recorder.flush();
    return { ...result, budget, failure };
  }

  /** The run's sandbox over its worktree, with the gateway as its only way out. */
  private async openSandbox(
    workspace: Workspace,
    endpoint: { baseURL: string; apiKey: string },
    watch: SandboxWatch,
  ): Promise<RunSandbox | undefined> {
    if (!this.parts.sandbox) {
      watch.onSandboxEvent({
        kind: "unsandboxed",
        message: "WARNING: this line has no sandbox backend; the run's commands are not isolated",
      });
      return undefined;
    }
    return this.parts.sandbox.create({
      workspacePath: workspace.path,
      gateway: { url: endpoint.baseURL, apiKey: endpoint.apiKey },
      onEvent: watch.onSandboxEvent,
    });
  }

  /** A budget refusal ends the run; the order's fate depends on which budget ran out. */
  private budgetEnding(order: WorkOrder, stop: BudgetStop): RunEnding {
    const reason = `stopped by the gateway: ${stop.message}`;
    switch (stop.scope) {
      case "run":
        return this.retryOrFail(
          order,
          "failed",
          reason,
          `${stop.message}. Work more economically: read less, change less.`,
        );
      case "order":
        return { outcome: "failed", runStatus: "failed", reason };
      case "day":
      case "total":
        // Not the order's fault: it waits for budget, and the line stops taking new work.
        this.halted ??= stop.message;
        return { outcome: "requeue", reason };
      default: {
        const unknownScope: never = stop.scope;
        throw new Error(`unknown budget scope ${unknownScope}`);
      }
    }
  }

  /**
   * A run whose model request failed outside the agent's control ends with the gateway's reason,
   * the agent's own words after it. A blocking failure (bad key, unknown model, provider down) is
   * not the order's fault and would fail every run alike: the order waits without losing an
   * attempt, and the line stops taking work until a person fixes the cause.
   */
  private modelFailureEnding(order: WorkOrder, failure: ModelFailure, said: string): RunEnding {
    const cause = describeModelFailure(failure);
    const words = said.trim().replace(/\s+/g, " ");
    const reason = words
      ? `${cause} (the agent said: ${words.length > 200 ? `${words.slice(0, 197)}...` : words})`
      : cause;
    if (failure.blocking) {
      if (!this.halted) {
        this.halted = cause;
        this.parts.logger.error({ orderId: order.id, failure }, `no new runs start: ${cause}`);
      }
      return { outcome: "requeue", reason };
    }
    return this.retryOrFail(
      order,
      "failed",
      reason,
      `The previous attempt stopped because a model request failed: ${cause}. This was not caused by your work; start again.`,
    );
  }

  /** Whether main's tip passes the tree gates; if not, the line pauses with the cause. */
  private async mainPasses(signal: AbortSignal): Promise<boolean> {
    const verdict = await this.baseline.check(undefined, signal);
    if (verdict.passed) return true;
    this.pauseForMain(verdict.cause ?? "main fails the gates");
    return false;
  }

  /**
   * A candidate failed a tree gate: if the main it was built on fails that way too, the failure
   * is not the order's. The order waits without losing an attempt (as for a blocking model
   * failure) and the line pauses until a person fixes main or its environment.
   */
  private async blameMain(
    failed: GateOutcome,
    base: string,
    signal: AbortSignal,
  ): Promise<RunEnding | undefined> {
    const gate = this.parts.gates.find((g) => g.name === failed.gate);
    if (!gate || (gate.scope ?? "tree") !== "tree") return undefined;
    const verdict = await this.baseline.check(base, signal, { verify: true });
    if (verdict.passed) return undefined;
    const cause = verdict.cause ?? "main fails the gates";
    this.pauseForMain(cause);
    return { outcome: "requeue", reason: `not this order's fault: ${cause}` };
  }

  private pauseForMain(cause: string): void {
    if (this.halted) return;
    this.halted = `${cause}. No agent run starts and no order is charged until main passes: fix main or the environment its gates run in, then start the line again`;
    this.parts.logger.error({ cause }, "the line pauses: main itself fails the gates");
  }

  /** A red gate: the next attempt gets the failing checks and the hunks of the change they point at. */
  private async rejected(
    order: WorkOrder,
    failed: GateOutcome,
    workspace: Workspace,
    when = "",
  ): Promise<RunEnding> {
    const what = failed.timedOut ? "timed out" : `failed (exit ${failed.exitCode})`;
    const diff = await changeOf(workspace);
    return this.retryOrFail(
      order,
      "rejected",
      `${failed.gate} gate ${what}${when ? ` ${when}` : ""}`,
      feedbackFrom(failed, { diff, root: workspace.path }),
    );
  }

  private retryOrFail(
    order: WorkOrder,
    runStatus: "rejected" | "failed",
    reason: string,
    feedback: string,
  ): RunEnding {
    const limit = order.max_attempts ?? this.settings.maxAttempts;
    if (order.attempts >= limit) {
      return {
        outcome: "failed",
        runStatus,
        reason: `${reason} (attempt ${order.attempts} of ${limit})`,
        feedback,
      };
    }
    return { outcome: "retry", runStatus, reason, feedback };
  }

  /**
   * An order that used up its attempts becomes a defect for a person, with every attempt attached:
   * how each run ended and what its failing gate said.
   */
  private async fileDefect(order: WorkOrder, runId: number): Promise<void> {
    const { ledger, logger } = this.parts;
    try {
      const runs = await ledger.listRuns(order.id);
      const attempts = [];
      for (const run of runs) {
        const failed = (await ledger.listGateResults(run.id)).filter((g) => !g.passed);
        attempts.push({
          runId: run.id,
          attempt: run.attempt,
          status: run.status,
          reason: run.outcome_reason,
          candidate: run.candidate_commit,
          failedGates: failed.map((g) => ({
            gate: g.gate,
            stage: g.stage,
            commit: g.commit_sha,
            excerpt: g.output.slice(-1500),
          })),
        });
      }
      await ledger.raiseDefect({
        kind: "order_failed",
        orderId: order.id,
        runId,
        summary: `WO-${order.id} failed after ${order.attempts} attempt(s): ${order.failure_reason ?? "no reason recorded"}`,
        evidence: { attempts },
      });
    } catch (error) {
      logger.error({ err: error, orderId: order.id }, "could not file a defect for a failed order");
    }
  }

  private async recordGate(
    runId: number,
    stage: "candidate" | "merge",
    commit: string,
    outcome: GateOutcome,
  ) {
    await this.parts.ledger.recordGate({
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

  /** Renews the run's lease; if it is lost (another worker took the run back), stop the run. */
  private keepLease(runId: number, controller: AbortController): NodeJS.Timeout {
    const { ledger, workerId, logger } = this.parts;
    return setInterval(
      () => {
        ledger.heartbeat(runId, workerId, this.settings.leaseMs).then(
          (kept) => {
            if (!kept) {
              logger.warn({ runId }, "lost the lease on a run; stopping it");
              controller.abort();
            }
          },
          (error: unknown) => logger.warn({ runId, err: error }, "could not renew a lease"),
        );
      },
      Math.max(1_000, this.settings.leaseMs / 3),
    );
  }

  private async report(
    order: WorkOrder,
    change: Omit<LineProgress, "at" | "orderId" | "title" | "done" | "total">,
  ) {
    if (this.listeners.length === 0) return;
    const totals = await this.parts.ledger.totals();
    const total = Object.values(totals.orders).reduce((a, b) => a + b, 0);
    const done = totals.orders.landed + totals.orders.failed + totals.orders.cancelled;
    const progress: LineProgress = {
      at: new Date(),
      orderId: order.id,
      title: order.title,
      done,
      total,
      ...change,
    };
    for (const listener of this.listeners) listener(progress);
  }
}

/** The run's change (base..HEAD) as a unified diff; empty when git cannot say. */
function changeOf(workspace: Workspace): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      "git",
      [
        "-c",
        "core.quotePath=false",
        "diff",
        "--no-color",
        "--no-renames",
        workspace.baseCommit,
        "HEAD",
      ],
      { cwd: workspace.path, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout) => resolve(error ? "" : stdout),
    );
  });
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
