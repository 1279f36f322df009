import type { Logger } from "pino";
import type { AgentDriver, ModelEndpoint } from "../agents/index.ts";
import type { Gate } from "../gates/index.ts";
import type { Ledger } from "../ledger/index.ts";
import type { MergeQueue } from "../merge/index.ts";
import type { SandboxBackend } from "../sandbox/index.ts";
import type { Workspaces } from "../workspace/index.ts";

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
