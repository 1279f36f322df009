import type { Logger } from "pino";
import { NightshiftError } from "../errors/index.ts";
import type { Ledger, NewModelRequest } from "../ledger/index.ts";

export interface MeterOptions {
  flushIntervalMs?: number;
  maxBatch?: number;
  /** Unwritten rows beyond this mean the ledger is not keeping up: the gateway stops forwarding. */
  maxPending?: number;
}

/**
 * Writes metered requests to the ledger in batches, off the request path. If writes fail, rows are
 * kept and retried (the ledger ignores a row it already has), and the meter reports itself
 * unhealthy so the gateway refuses new requests rather than let them through unmetered.
 */
export class Meter {
  private pending: NewModelRequest[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private failing: unknown;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly maxPending: number;

  constructor(
    private readonly ledger: Pick<Ledger, "recordModelRequests">,
    private readonly logger: Logger,
    options: MeterOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.maxBatch = options.maxBatch ?? 500;
    this.maxPending = options.maxPending ?? 20_000;
  }

  /** False while the ledger refuses writes or has fallen too far behind. */
  get healthy(): boolean {
    return this.failing === undefined && this.pending.length < this.maxPending;
  }

  get backlog(): number {
    return this.pending.length;
  }

  record(row: NewModelRequest): void {
    this.pending.push(row);
    if (this.pending.length >= this.maxBatch) this.flushInBackground();
    else this.timer ??= setTimeout(() => this.flushInBackground(), this.flushIntervalMs);
  }

  /** Writes everything pending; resolves when it is in the ledger, rejects if it could not be. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.writing) await this.writing;
    if (this.pending.length === 0) return;
    const batch = this.pending.slice(0, this.maxBatch);
    this.writing = this.ledger.recordModelRequests(batch).then(
      () => {
        this.pending.splice(0, batch.length);
        this.failing = undefined;
      },
      (error: unknown) => {
        this.failing = error;
        this.logger.error({ err: error, rows: batch.length }, "metering write failed; will retry");
      },
    );
    await this.writing;
    this.writing = undefined;
    if (this.failing) {
      this.timer ??= setTimeout(
        () => this.flushInBackground(),
        Math.max(this.flushIntervalMs, 500),
      );
      throw this.failing;
    }
    if (this.pending.length > 0) await this.flush();
  }

  /** Failures are already logged and leave the meter unhealthy; nobody awaits this one. */
  private flushInBackground(): void {
    this.flush().catch(() => undefined);
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } catch (error) {
      throw new NightshiftError(
        "metering_lost",
        `${this.pending.length} metered model requests could not be written to the ledger before shutdown`,
        {
          cause: error,
          hint: "check the ledger (database) is reachable; the requests are in the log",
          details: { rows: this.pending },
        },
      );
    }
  }
}
