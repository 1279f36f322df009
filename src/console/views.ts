import { sql } from "kysely";
import type { Defect, Ledger, Run, WorkOrder } from "../ledger/index.ts";
import type {
  ControlView,
  DefectView,
  LineView,
  OrderView,
  RunSummary,
  Station,
} from "./schema.ts";
import { STATIONS } from "./schema.ts";

/**
 * What the console shows, read from the ledger alone (never from one worker's memory), so that a
 * console beside one embedded-ledger process and one beside several PostgreSQL workers show the
 * same line.
 */

/** A cheap fingerprint of the ledger: when it changes, the line view is read and pushed again. */
export async function ledgerVersion(ledger: Ledger): Promise<string> {
  const result = await sql<{ v: string }>`
    select concat_ws(':',
      (select max(id) from transitions),
      (select max(id) from run_events),
      (select max(id) from controls),
      (select max(id) from model_requests),
      (select max(id) from gate_results),
      (select count(*) from defects where status = 'open'),
      (select max(id) from defects),
      (select extract(epoch from changed_at) || '/' || coalesce(extract(epoch from seen_at), 0)
         from line_state),
      (select max(id) from baseline_checks),
      (select max(extract(epoch from updated_at)) from work_orders)) as v`.execute(ledger.db);
  return result.rows[0]?.v ?? "";
}

export function stationOf(
  order: WorkOrder,
  liveRun: Run | undefined,
  openDefects: number,
): Station {
  if (order.status === "running") {
    if (liveRun?.phase === "gates") return "gating";
    if (liveRun?.phase === "merging") return "merging";
    return "running";
  }
  if (openDefects > 0 && order.status !== "landed" && order.status !== "proposed") return "defect";
  return order.status;
}

export function runSummary(run: Run): RunSummary {
  return {
    id: run.id,
    orderId: run.order_id,
    attempt: run.attempt,
    status: run.status,
    phase: run.phase,
    agent: run.agent,
    model: run.model,
    workerId: run.worker_id,
    inputTokens: run.input_tokens,
    outputTokens: run.output_tokens,
    costUsd: run.cost_usd,
    outcomeReason: run.outcome_reason,
    startedAt: iso(run.started_at),
    endedAt: run.ended_at ? iso(run.ended_at) : null,
  };
}

export function orderView(order: WorkOrder, runs: Run[], defects: Defect[]): OrderView {
  const own = runs.filter((r) => r.order_id === order.id);
  const live = own.find((r) => r.status === "running");
  const open = defects.filter((d) => d.order_id === order.id && d.status === "open").length;
  return {
    id: order.id,
    key: order.key,
    title: order.title,
    status: order.status,
    station: stationOf(order, live, open),
    priority: order.priority,
    attempts: order.attempts,
    budgetTokens: order.budget_tokens,
    failureReason: order.failure_reason,
    landedCommit: order.landed_commit,
    liveRunId: live?.id ?? null,
    lastRunId: own.reduce<number | null>(
      (last, r) => (last === null || r.id > last ? r.id : last),
      null,
    ),
    openDefects: open,
    createdAt: iso(order.created_at),
    updatedAt: iso(order.updated_at),
  };
}

function defectView(defect: Defect): DefectView {
  return {
    id: defect.id,
    kind: defect.kind,
    orderId: defect.order_id,
    runId: defect.run_id,
    summary: defect.summary,
    status: defect.status,
    at: iso(defect.at),
  };
}

export async function lineView(ledger: Ledger, factory: string): Promise<LineView> {
  const [orders, runs, defects, state, baseline, controls, totals] = await Promise.all([
    ledger.listOrders(),
    ledger.listRuns(),
    ledger.listDefects(),
    ledger.line.state(),
    ledger.acceptance.latestBaseline(),
    ledger.controls.history(50),
    ledger.totals(),
  ]);
  const views = orders.map((o) => orderView(o, runs, defects));
  const counts = Object.fromEntries(STATIONS.map((s) => [s, 0])) as Record<Station, number>;
  for (const view of views) counts[view.station] += 1;
  const hourAgo = Date.now() - 3_600_000;
  return {
    factory,
    at: new Date().toISOString(),
    paused: {
      paused: state.paused,
      reason: state.reason,
      by: state.changed_by,
      at: iso(state.changed_at),
      seenAt: state.seen_at ? iso(state.seen_at) : null,
    },
    mainFailing:
      baseline && !baseline.passed ? { commit: baseline.commit_sha, cause: baseline.cause } : null,
    counts,
    throughput: {
      landedLastHour: runs.filter(
        (r) => r.status === "landed" && r.ended_at && r.ended_at.getTime() >= hourAgo,
      ).length,
      runsLastHour: runs.filter((r) => r.started_at.getTime() >= hourAgo).length,
      costUsdTotal: totals.costUsd,
      tokensTotal: totals.inputTokens + totals.outputTokens,
    },
    orders: views,
    runs: runs
      .slice()
      .sort((a, b) => b.id - a.id)
      .slice(0, 200)
      .map(runSummary),
    defects: defects.filter((d) => d.status === "open").map(defectView),
    controls: controls.map(
      (c): ControlView => ({
        id: c.id,
        action: c.action,
        orderId: c.order_id,
        runId: c.run_id,
        actor: c.actor,
        note: c.note,
        details: c.details,
        at: iso(c.at),
      }),
    ),
  };
}

export function iso(date: Date | string): string {
  return (date instanceof Date ? date : new Date(date)).toISOString();
}
