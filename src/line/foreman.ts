import type { Logger } from "pino";
import { describeError } from "../errors/index.ts";
import {
  isTransientLedgerError,
  type Run,
  type RunEnding,
  type WorkOrder,
} from "../ledger/index.ts";
import type { Workspace } from "../workspace/index.ts";
import { outsideTheOrder } from "./circuit-breaker.ts";
import type { LineContext } from "./context.ts";
import type { RunEndings } from "./endings.ts";
import type { MainGuard } from "./main-guard.ts";

/** How often, and how far apart, the end of a run is recorded again after a lost connection. */
const RECORD_ATTEMPTS = 10;
const RECORD_RETRY_MS = 500;

/** The work of one run, given its stop signal; hands over the run's workspace with `hold`. */
export type RunBody = (
  signal: AbortSignal,
  hold: (workspace: Workspace) => void,
) => Promise<RunEnding>;

/**
 * Sees each run through under its lease: renews the lease (and stops the run when it is lost),
 * stops it when the line stops, and settles it however it ends: records the ending, releases its
 * workspace, and files a defect when its order used up its attempts.
 */
export class Foreman {
  constructor(
    private readonly ctx: LineContext,
    private readonly endings: RunEndings,
    private readonly main: MainGuard,
  ) {}

  /**
   * Runs `body` as one run and tracks it among the line's active runs until it has settled. An
   * unexpected failure ends the run with the error as its reason. `body` is called before anything
   * is awaited.
   */
  start(order: WorkOrder, run: Run, lineSignal: AbortSignal, body: RunBody): void {
    const work = this.supervise(order, run, lineSignal, body).finally(() =>
      this.ctx.active.delete(run.id),
    );
    this.ctx.active.set(run.id, work);
  }

  private async supervise(
    order: WorkOrder,
    run: Run,
    lineSignal: AbortSignal,
    body: RunBody,
  ): Promise<void> {
    const log = this.ctx.parts.logger.child({
      orderId: order.id,
      runId: run.id,
      attempt: run.attempt,
    });
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
      ending = outsideTheOrder(
        this.endings.retryOrFail(
          order,
          "failed",
          `internal error: ${describeError(error)}`,
          describeError(error),
        ),
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
    const { workspaces } = this.ctx.parts;
    if (stopped) {
      // Shutdown or a lost lease: recovery decides (requeue, or keep the candidate queued for the
      // next start), and its pruning removes what is no longer needed. Removing the branch here
      // would throw away a queued candidate, or pull it from under the worker that took it over.
      return;
    }
    try {
      const { order: after } = await this.record(run.id, ending, log);
      if (ending.outcome === "landed") await this.main.landed(ending.landedCommit);
      if (workspace) {
        const done = ending.outcome === "landed" || ending.outcome === "proposed";
        await workspaces.release(workspace, { keep: !done });
      }
      log.info({ outcome: ending.outcome, reason: ending.reason }, "run finished");
      if (after.status === "failed") await this.fileDefect(after, run.id);
      await this.ctx.breaker.settled(run.id, ending);
      await this.ctx.progress.report(after, {
        runId: run.id,
        attempt: run.attempt,
        state: after.status,
        message: ending.reason,
      });
    } catch (error) {
      log.error({ err: error }, "could not record the end of a run");
    }
  }

  /**
   * Records the run's end, trying again while the ledger's connection is lost: a run whose end is
   * never recorded would stay `running` under this live worker, whose timekeeper leaves its own
   * runs to their heartbeat, and its order would wait forever.
   */
  private async record(runId: number, ending: RunEnding, log: Logger) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.ctx.parts.ledger.finishRun(runId, ending);
      } catch (error) {
        if (!isTransientLedgerError(error) || attempt >= RECORD_ATTEMPTS) throw error;
        log.warn({ err: error, attempt }, "lost the ledger while recording a run's end; again");
        await new Promise((resolve) => setTimeout(resolve, RECORD_RETRY_MS * attempt));
      }
    }
  }

  /** Renews the run's lease; if it is lost (another worker took the run back), stop the run. */
  private keepLease(runId: number, controller: AbortController): NodeJS.Timeout {
    const { ledger, workerId, logger } = this.ctx.parts;
    const { leaseMs } = this.ctx.settings;
    return setInterval(
      () => {
        ledger.heartbeat(runId, workerId, leaseMs).then(
          (kept) => {
            if (!kept) {
              logger.warn({ runId }, "lost the lease on a run; stopping it");
              controller.abort();
            }
          },
          (error: unknown) => logger.warn({ runId, err: error }, "could not renew a lease"),
        );
      },
      Math.max(1_000, leaseMs / 3),
    );
  }

  /**
   * An order that used up its attempts becomes a defect for a person, with every attempt attached:
   * how each run ended and what its failing gate said.
   */
  private async fileDefect(order: WorkOrder, runId: number): Promise<void> {
    const { ledger, logger } = this.ctx.parts;
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
}
