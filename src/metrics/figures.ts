import { sql } from "kysely";
import type { Ledger, Merge } from "../ledger/index.ts";

/** What the ledger says the factory did, summed; every figure of `report` and /metrics. */
export interface LedgerFigures {
  orders: Record<string, number>;
  /** Runs by status (running, landed, rejected, failed, abandoned). */
  runs: Record<string, number>;
  /** Rows in merges: changes that reached main. */
  landedChanges: number;
  modelRequests: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  /** Everything metered, the factory's own requests (planner, acceptance writer) included. */
  costUsd: number;
  firstRequestAt: Date | null;
  lastRequestAt: Date | null;
}

/** The ledger's sums, in three reads (no row is loaded into this process). */
export async function ledgerFigures(ledger: Ledger): Promise<LedgerFigures> {
  const db = ledger.db;
  const [orders, runs, merges, requests] = await Promise.all([
    db
      .selectFrom("work_orders")
      .select(["status", (eb) => eb.fn.countAll<string>().as("n")])
      .groupBy("status")
      .execute(),
    db
      .selectFrom("runs")
      .select(["status", (eb) => eb.fn.countAll<string>().as("n")])
      .groupBy("status")
      .execute(),
    db
      .selectFrom("merges")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .executeTakeFirstOrThrow(),
    db
      .selectFrom("model_requests")
      .select((eb) => [
        eb.fn.countAll<string>().as("n"),
        eb.fn.coalesce(eb.fn.sum<string>("input_tokens"), sql<string>`0`).as("input"),
        eb.fn.coalesce(eb.fn.sum<string>("output_tokens"), sql<string>`0`).as("output"),
        eb.fn.coalesce(eb.fn.sum<string>("cached_input_tokens"), sql<string>`0`).as("cached"),
        eb.fn.coalesce(eb.fn.sum<string>("cost_usd"), sql<string>`0`).as("cost"),
        eb.fn.min("at").as("first"),
        eb.fn.max("at").as("last"),
      ])
      .executeTakeFirstOrThrow(),
  ]);
  return {
    orders: Object.fromEntries(orders.map((r) => [r.status, Number(r.n)])),
    runs: Object.fromEntries(runs.map((r) => [r.status, Number(r.n)])),
    landedChanges: Number(merges.n),
    modelRequests: Number(requests.n),
    inputTokens: Number(requests.input),
    outputTokens: Number(requests.output),
    cachedInputTokens: Number(requests.cached),
    costUsd: Number(requests.cost),
    firstRequestAt: requests.first ? new Date(requests.first as Date) : null,
    lastRequestAt: requests.last ? new Date(requests.last as Date) : null,
  };
}

/** The landed merges, oldest first: what `linesLanded` counts. */
export function landedMerges(ledger: Ledger): Promise<Merge[]> {
  return ledger.listMerges();
}
