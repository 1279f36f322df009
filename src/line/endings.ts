import { execFile } from "node:child_process";
import { feedbackFrom, type GateOutcome } from "../gates/index.ts";
import type { RunEnding, WorkOrder } from "../ledger/index.ts";
import type { Workspace } from "../workspace/index.ts";
import type { LineContext } from "./context.ts";
import { type BudgetStop, describeModelFailure, type ModelFailure } from "./parts.ts";

/**
 * How a run ends, and what that means for its order: another attempt with feedback, a failure for
 * a person, or back to the queue when the cause is not the order's (which halts the line).
 */
export class RunEndings {
  constructor(private readonly ctx: LineContext) {}

  retryOrFail(
    order: WorkOrder,
    runStatus: "rejected" | "failed",
    reason: string,
    feedback: string,
  ): RunEnding {
    const limit = order.max_attempts ?? this.ctx.settings.maxAttempts;
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

  /** A budget refusal ends the run; the order's fate depends on which budget ran out. */
  budget(order: WorkOrder, stop: BudgetStop): RunEnding {
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
        this.ctx.halt.pull(stop.message);
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
  modelFailure(order: WorkOrder, failure: ModelFailure, said: string): RunEnding {
    const cause = describeModelFailure(failure);
    const words = said.trim().replace(/\s+/g, " ");
    const reason = words
      ? `${cause} (the agent said: ${words.length > 200 ? `${words.slice(0, 197)}...` : words})`
      : cause;
    if (failure.blocking) {
      if (this.ctx.halt.pull(cause)) {
        this.ctx.parts.logger.error({ orderId: order.id, failure }, `no new runs start: ${cause}`);
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

  /** A red gate: the next attempt gets the failing checks and the hunks of the change they point at. */
  async rejected(
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
