import type { OrderStatus, RunStatus } from "../ledger/index.ts";

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
