import type { Logger } from "pino";
import type { Ledger } from "../ledger/index.ts";

/**
 * Keeps the promise of `lease_seconds`: a run whose worker stopped renewing its lease is taken
 * back by any live worker, not only by the next one to start or stop. On every turn of the line's
 * loop (at least once per poll interval) it asks the ledger for other workers' expired leases, one
 * indexed query; only when there are some does it hand over to the line's recovery, which is the
 * start-up recovery itself (landed if the commit reached main, back in the merge queue if it was
 * waiting there, else requeued without losing the attempt), so the two cannot drift apart.
 *
 * The worker's own runs are left out: its heartbeat renews them, and stops any run whose lease it
 * lost. A failure here is logged and tried again next turn rather than stopping the line.
 */
export class Timekeeper {
  constructor(
    private readonly parts: {
      ledger: Ledger;
      workerId: string;
      logger: Logger;
      /** The line's recovery of runs with expired leases (other workers' only). */
      takeBack: () => Promise<void>;
    },
  ) {}

  /** Takes back what expired; returns how many runs had. */
  async tick(): Promise<number> {
    const { ledger, workerId, logger, takeBack } = this.parts;
    try {
      const expired = await ledger.recovery.expiredLeases(workerId);
      if (expired.length === 0) return 0;
      logger.warn(
        {
          runs: expired.map((r) => ({ runId: r.id, worker: r.worker_id, phase: r.phase })),
        },
        "leases expired: taking the runs back",
      );
      await takeBack();
      return expired.length;
    } catch (error) {
      logger.error({ err: error }, "could not take back runs with expired leases; trying again");
      return 0;
    }
  }
}
