import type { Logger } from "pino";
import type { WorkerRoster } from "../ledger/index.ts";
import type { LandingHooks, LandingResult, MergeQueue } from "../merge/index.ts";
import type { Workspace } from "../workspace/index.ts";

/**
 * The merge queue of a worker that shares its ledger and its main with other workers: a candidate
 * is landed only while this worker is the single merge leader (WorkerRoster.lead), so that one
 * queue at a time tests candidates against main instead of every worker's queue racing the others
 * and re-testing after every lost race. The leadership is a lease, renewed while candidates are in
 * flight and given up as soon as there are none, so a worker with work waits for it at most one
 * landing, and a dead leader is replaced once its lease runs out.
 *
 * The lease is an economy, not the safety: a leader that stalls past its lease (a long pause, a
 * lost connection) may still be landing when the next one starts. Main itself moves only by
 * compare-and-swap (Workspaces.fastForwardMain: update-ref with the expected old value locally, a
 * push with --force-with-lease on a shared remote), so of two leaders racing, one moves main and
 * the other rebases onto it and tests again.
 */
export class LeaderMergeQueue implements MergeQueue {
  private inFlight = 0;
  private renewal: NodeJS.Timeout | undefined;
  private leading = false;

  constructor(
    private readonly inner: MergeQueue,
    private readonly parts: {
      roster: WorkerRoster;
      workerId: string;
      leaseMs: number;
      /** How often a waiting worker asks again. */
      pollMs: number;
      logger: Logger;
    },
  ) {}

  async land(
    workspace: Workspace,
    hooks: LandingHooks,
    signal?: AbortSignal,
  ): Promise<LandingResult> {
    this.inFlight += 1;
    try {
      await this.becomeLeader(signal);
      return await this.inner.land(workspace, hooks, signal);
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) await this.resign();
    }
  }

  private async becomeLeader(signal?: AbortSignal): Promise<void> {
    const { roster, workerId, leaseMs, pollMs, logger } = this.parts;
    if (this.leading) return;
    let waited = false;
    for (;;) {
      signal?.throwIfAborted();
      if (await roster.lead(workerId, leaseMs)) {
        this.leading = true;
        this.renewal ??= setInterval(() => void this.renew(), Math.max(250, leaseMs / 3));
        if (waited) logger.info({ workerId }, "took over as merge leader");
        return;
      }
      if (!waited) logger.info({ workerId }, "waiting to become merge leader");
      waited = true;
      await sleep(pollMs, signal);
    }
  }

  private async renew(): Promise<void> {
    const { roster, workerId, leaseMs, logger } = this.parts;
    try {
      const kept = await roster.lead(workerId, leaseMs);
      if (!kept && this.leading) {
        // Main's compare-and-swap keeps landings safe; the next land asks again.
        logger.warn({ workerId }, "lost the merge leadership while landing");
        this.leading = false;
      }
    } catch (error) {
      logger.warn({ err: error }, "could not renew the merge leadership");
    }
  }

  private async resign(): Promise<void> {
    clearInterval(this.renewal);
    this.renewal = undefined;
    if (!this.leading) return;
    this.leading = false;
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
