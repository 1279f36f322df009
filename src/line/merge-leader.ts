import type { Logger } from "pino";
import type { WorkerRoster } from "../ledger/index.ts";
import type { LandingHooks, LandingResult, MergeQueue } from "../merge/index.ts";
import type { Workspace } from "../workspace/index.ts";

/**
 * The merge queue of a worker that shares its ledger and its main with other workers: a candidate
 * is landed only while this worker is the single merge leader (WorkerRoster.lead), so that one
 * queue at a time tests candidates against main instead of every worker's queue racing the others
 * and re-testing after every lost race. The leadership is taken for one candidate at a time, and
 * only for the candidate at the head of the shared queue (the first to enter it, whichever worker
 * holds it), then given up: landings go in queue order across workers, none waits for another
 * worker to run out of candidates, and a dead leader is replaced once its lease runs out. A dead
 * worker's candidates leave the head as their leases run out, and come back to it, still in their
 * place, when another worker adopts them (RunRecovery.adoptRun).
 *
 * The lease is an economy, not the safety: a leader that stalls past its lease (a long pause, a
 * lost connection) may still be landing when the next one starts. Main itself moves only by
 * compare-and-swap (Workspaces.fastForwardMain: update-ref with the expected old value locally, a
 * push with --force-with-lease on a shared remote), so of two leaders racing, one moves main and
 * the other rebases onto it and tests again.
 */
export class LeaderMergeQueue implements MergeQueue {
  /** The run whose candidate this worker is landing as the leader, if any. */
  private leadingRun: number | undefined;
  private renewal: NodeJS.Timeout | undefined;

  constructor(
    private readonly inner: MergeQueue,
    private readonly parts: {
      roster: WorkerRoster;
      workerId: string;
      leaseMs: number;
      /** How often a waiting candidate asks again. */
      pollMs: number;
      logger: Logger;
    },
  ) {}

  async land(
    workspace: Workspace,
    hooks: LandingHooks,
    signal?: AbortSignal,
  ): Promise<LandingResult> {
    await this.becomeLeader(Number(workspace.runId), signal);
    try {
      return await this.inner.land(workspace, hooks, signal);
    } finally {
      await this.resign();
    }
  }

  private async becomeLeader(runId: number, signal?: AbortSignal): Promise<void> {
    const { roster, workerId, leaseMs, pollMs, logger } = this.parts;
    let waited = false;
    for (;;) {
      signal?.throwIfAborted();
      if (this.leadingRun === undefined && (await roster.lead(workerId, leaseMs, runId))) {
        this.leadingRun = runId;
        this.renewal = setInterval(() => void this.renew(), Math.max(250, leaseMs / 3));
        if (waited) logger.info({ workerId, runId }, "took over as merge leader");
        return;
      }
      if (!waited) logger.info({ workerId, runId }, "waiting to become merge leader");
      waited = true;
      await sleep(pollMs, signal);
    }
  }

  private async renew(): Promise<void> {
    const { roster, workerId, leaseMs, logger } = this.parts;
    if (this.leadingRun === undefined) return;
    try {
      if (!(await roster.lead(workerId, leaseMs))) {
        // Main's compare-and-swap keeps the landing safe.
        logger.warn(
          { workerId, runId: this.leadingRun },
          "lost the merge leadership while landing",
        );
      }
    } catch (error) {
      logger.warn({ err: error }, "could not renew the merge leadership");
    }
  }

  private async resign(): Promise<void> {
    clearInterval(this.renewal);
    this.renewal = undefined;
    this.leadingRun = undefined;
    try {
      await this.parts.roster.resign(this.parts.workerId);
    } catch (error) {
      // The lease runs out on its own.
      this.parts.logger.warn({ err: error }, "could not give up the merge leadership");
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
