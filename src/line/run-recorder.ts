import type { AgentEvent } from "../agents/index.ts";
import type { Ledger } from "../ledger/index.ts";

const FLUSH_EVERY_MS = 500;

/**
 * Writes one run's agent events to the ledger in batches, so a chatty agent does not turn every
 * event into a database round-trip. (Usage events are kept as the agent's own account; the
 * gateway's metering is what the run is charged.)
 */
export class RunRecorder {
  private pending: { kind: string; payload: unknown }[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;

  constructor(
    private readonly ledger: Ledger,
    private readonly runId: number,
  ) {}

  record = (event: AgentEvent): void => {
    const { kind, ...payload } = event;
    this.pending.push({ kind, payload });
    this.timer ??= setTimeout(() => void this.writePending(), FLUSH_EVERY_MS);
  };

  /** Writes everything recorded so far; rejects if any write of this run failed. */
  async flush(): Promise<void> {
    await this.writePending();
    if (this.failure) throw this.failure;
  }

  /** Never rejects: a timed write that fails (a lost connection) is reported by the next flush(). */
  private writePending(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    return this.chain(() => this.ledger.appendEvents(this.runId, batch));
  }

  /** Writes happen one after another; a failed one is kept for flush() to report. */
  private chain(write: () => Promise<unknown>): Promise<void> {
    this.flushing = this.flushing.then(write).then(
      () => undefined,
      (error: unknown) => {
        this.failure ??= error;
      },
    );
    return this.flushing;
  }
}
