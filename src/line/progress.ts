import type { Ledger, OrderStatus, RunStatus, WorkOrder } from "../ledger/index.ts";

/** One state change on the line, for people watching it (the CLI prints one line per event). */
export interface LineProgress {
  at: Date;
  orderId: number;
  title: string;
  runId?: number;
  attempt?: number;
  /** What changed: an order's status, or a run's phase or end. */
  state: OrderStatus | RunStatus | "agent" | "gates" | "merging";
  message: string;
  /** Orders that have reached an end (landed, failed, cancelled) out of all orders. */
  done: number;
  total: number;
}

export type ProgressListener = (progress: LineProgress) => void;

/** Tells people watching the line about each state change, with the line's totals. */
export class ProgressReporter {
  private readonly listeners: ProgressListener[] = [];

  constructor(private readonly ledger: Pick<Ledger, "totals">) {}

  listen(listener: ProgressListener): void {
    this.listeners.push(listener);
  }

  async report(
    order: WorkOrder,
    change: Omit<LineProgress, "at" | "orderId" | "title" | "done" | "total">,
  ): Promise<void> {
    if (this.listeners.length === 0) return;
    const totals = await this.ledger.totals();
    const total = Object.values(totals.orders).reduce((a, b) => a + b, 0);
    const done = totals.orders.landed + totals.orders.failed + totals.orders.cancelled;
    const progress: LineProgress = {
      at: new Date(),
      orderId: order.id,
      title: order.title,
      done,
      total,
      ...change,
    };
    for (const listener of this.listeners) listener(progress);
  }
}
