import type { AgentEvent } from "../agents/index.ts";
import { costOf } from "../gateway/index.ts";
import type { Ledger } from "../ledger/index.ts";

const FLUSH_EVERY_MS = 500;

/**
 * Writes one run's agent events to the ledger in batches, so a chatty agent does not turn every
 * event into a database round-trip, and prices usage as it arrives.
 */
export class RunRecorder {
  private pending: { kind: string; payload: unknown }[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;

  constructor(
    private readonly ledger: Ledger,
    private readonly runId: number,
    private readonly model: string,
  ) {}

  record = (event: AgentEvent): void => {
    const { kind, ...payload } = event;
    this.pending.push({ kind, payload });
    if (event.kind === "usage") {
      const costUsd = costOf(this.model, event.inputTokens, event.outputTokens);
      this.chain(() =>
        this.ledger.addUsage(this.runId, {
          inputTokens: event.inputTokens,
          outputTokens: event.outputTokens,
          costUsd,
        }),
      );
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, FLUSH_EVERY_MS);
  };

  /** Writes everything recorded so far; rejects if any write of this run failed. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    await this.chain(() => this.ledger.appendEvents(this.runId, batch));
    if (this.failure) throw this.failure;
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
