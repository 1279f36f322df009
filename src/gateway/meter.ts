import type { Logger } from "pino";
import { NightshiftError } from "../errors/index.ts";
import type { Metering, NewModelRequest } from "../ledger/index.ts";

export interface MeterOptions {
  flushIntervalMs?: number;
  maxBatch?: number;
  /**
   * Unwritten rows beyond this make record() return a promise that resolves once the ledger has
   * caught up: requests wait (back-pressure) rather than rows pile up in memory or get dropped.
   */
  maxPending?: number;
  /** Longest wait between retries while the ledger is down. */
  maxRetryDelayMs?: number;
}

type MeterLedger = Pick<Metering, "recordModelRequests" | "deadLetterModelRequest">;

/**
 * Writes metered requests to the ledger in batches, off the request path.
 *
 * Two kinds of failure are told apart. A row the ledger refuses (a constraint or a value it
 * cannot store: PostgreSQL error classes 22 and 23) is moved to the dead-letter table with the
 * reason, and the rows behind it keep flowing: one bad row must never stop the meter. Any other
 * failure means the ledger itself is down: rows are kept and retried with backoff, and the meter
 * reports itself unhealthy so the gateway refuses new requests (fails closed) until a write
 * succeeds again, which it notices by itself.
 */
export class Meter {
  private pending: NewModelRequest[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private failing: unknown;
  private retryDelayMs: number;
  private closed = false;
  private waiters: (() => void)[] = [];
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly maxPending: number;
  private readonly maxRetryDelayMs: number;

  constructor(
    private readonly ledger: MeterLedger,
    private readonly logger: Logger,
    options: MeterOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 20;
    this.maxBatch = options.maxBatch ?? 500;
    this.maxPending = options.maxPending ?? 5_000;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 5_000;
    this.retryDelayMs = this.flushIntervalMs;
  }

  /** False while the ledger is down (its last write failed for a reason other than a bad row). */
  get healthy(): boolean {
    return this.failing === undefined;
  }

  get backlog(): number {
    return this.pending.length;
  }

  /** The next record() will ask its caller to wait. */
  get nearlyFull(): boolean {
    return this.pending.length + 1 >= this.maxPending;
  }

  /**
   * Queues a row. Returns a promise when the queue is full: the caller should wait on it before
   * taking more work (it resolves once the ledger has caught up), and undefined otherwise.
   */
  record(row: NewModelRequest): Promise<void> | undefined {
    this.pending.push(row);
    if (this.pending.length >= this.maxBatch && !this.writing) this.flushInBackground();
    else if (!this.failing) this.schedule(this.flushIntervalMs);
    if (this.pending.length < this.maxPending) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private schedule(delayMs: number): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flushInBackground();
    }, delayMs);
  }

  /** Writes everything pending; resolves when it is in the ledger, rejects if the ledger is down. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.writing) await this.writing;
    while (this.pending.length > 0) {
      const batch = this.pending.slice(0, this.maxBatch);
      this.writing = this.write(batch);
      try {
        await this.writing;
      } finally {
        this.writing = undefined;
      }
      this.pending.splice(0, batch.length);
      this.failing = undefined;
      this.retryDelayMs = this.flushIntervalMs;
      this.release();
    }
    this.failing = undefined;
  }

  /** One batch into the ledger; rows it refuses go to the dead letters, one at a time. */
  private async write(batch: NewModelRequest[]): Promise<void> {
    try {
      await this.ledger.recordModelRequests(batch);
      return;
    } catch (error) {
      if (!isRowError(error)) throw this.down(error, batch.length);
    }
    for (const row of batch) {
      try {
        await this.ledger.recordModelRequests([row]);
      } catch (error) {
        if (!isRowError(error)) throw this.down(error, batch.length);
        const reason = `${(error as Error).message} (${(error as { code?: string }).code})`;
        try {
          await this.ledger.deadLetterModelRequest(row, reason);
        } catch (letterError) {
          throw this.down(letterError, batch.length);
        }
        this.logger.error(
          { row, reason },
          "the ledger refused a metered model request; kept in model_request_dead_letters",
        );
      }
    }
  }

  private down(error: unknown, rows: number): unknown {
    if (this.failing === undefined) {
      this.logger.error(
        { err: error, rows },
        "the ledger is down: metering write failed; refusing new model requests until it is back",
      );
    }
    this.failing = error;
    return error;
  }

  private release(): void {
    if (this.pending.length >= this.maxPending) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Writes one batch (what is pending, up to maxBatch) and leaves the rows that arrive meanwhile
   * for the next tick, unless a full batch is waiting. A ledger transaction costs the same few
   * statements whatever its size (on the embedded ledger about 5 ms of CPU), so writing back to
   * back as rows trickle in would spend most of the gateway's CPU on tiny batches.
   * Failures leave the meter unhealthy and schedule a retry; nobody awaits this one.
   */
  private flushInBackground(): void {
    if (this.writing || this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.slice(0, this.maxBatch);
    if (batch.length === 0) return;
    const writing = this.write(batch);
    this.writing = writing;
    writing.then(
      () => {
        this.writing = undefined;
        this.pending.splice(0, batch.length);
        this.failing = undefined;
        this.retryDelayMs = this.flushIntervalMs;
        this.release();
        if (this.pending.length >= this.maxBatch) this.flushInBackground();
        else if (this.pending.length > 0) this.schedule(this.flushIntervalMs);
      },
      () => {
        this.writing = undefined;
        if (this.closed || this.timer) return;
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.maxRetryDelayMs);
        this.schedule(this.retryDelayMs);
      },
    );
  }

  /**
   * Writes what is pending, retrying for up to `deadlineMs` while the ledger is down, then stops
   * for good. Rows it could not write are logged in full and reported in the error.
   */
  async close(deadlineMs = 5_000): Promise<void> {
    const giveUp = Date.now() + deadlineMs;
    let lastError: unknown;
    for (;;) {
      try {
        await this.flush();
        this.closed = true;
        return;
      } catch (error) {
        lastError = error;
      }
      if (Date.now() >= giveUp) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(200, deadlineMs)));
    }
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const rows = this.pending;
    this.pending = [];
    this.release();
    this.logger.error({ rows }, "metered model requests lost at shutdown: the ledger is down");
    throw new NightshiftError(
      "metering_lost",
      `${rows.length} metered model requests could not be written to the ledger before shutdown`,
      {
        cause: lastError,
        hint: "check the ledger (database) is reachable; the requests are in the log",
        details: { rows },
      },
    );
  }
}

/** The ledger refused this data (PostgreSQL classes 22 data exception, 23 integrity constraint). */
function isRowError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && /^2[23][0-9A-Z]{3}$/.test(code);
}
