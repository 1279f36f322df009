import { sql } from "kysely";
import type { Ledger } from "../ledger/index.ts";
import type { Charts } from "./schema.ts";

const HOUR = 3_600_000;

export interface BudgetLimits {
  dailyUsd: number | null;
  totalUsd: number | null;
}

/**
 * The series the console charts, by UTC hour over the last `hours` hours: read from the ledger's
 * runs, orders, defects and metered requests, so every worker's work counts.
 */
export async function charts(ledger: Ledger, limits: BudgetLimits, hours = 24): Promise<Charts> {
  const now = Date.now();
  const start = Math.floor(now / HOUR) * HOUR - (hours - 1) * HOUR;
  const slot = (date: Date | null) => {
    if (!date) return -1;
    const i = Math.floor((date.getTime() - start) / HOUR);
    return i >= 0 && i < hours ? i : -1;
  };
  const zeros = () => new Array<number>(hours).fill(0);
  const [runs, orders, defects, spendRows, totals] = await Promise.all([
    ledger.listRuns(),
    ledger.listOrders(),
    ledger.listDefects(),
    sql<{ hour: Date; usd: number }>`
      select date_trunc('hour', at) as hour, sum(cost_usd)::float8 as usd from model_requests
      where at >= ${new Date(start)} group by 1`.execute(ledger.db),
    ledger.metering.spend({}),
  ]);
  const landed = zeros();
  const ended = zeros();
  const started = zeros();
  for (const run of runs) {
    const s = slot(run.started_at);
    if (s >= 0) bump(started, s, 1);
    const e = slot(run.ended_at);
    if (e >= 0 && run.status !== "running") bump(ended, e, 1);
    if (e >= 0 && run.status === "landed") bump(landed, e, 1);
  }
  const spend = zeros();
  for (const row of spendRows.rows) {
    const s = slot(new Date(row.hour));
    if (s >= 0) bump(spend, s, Number(row.usd));
  }
  const defectCount = zeros();
  for (const defect of defects) {
    const s = slot(defect.at);
    if (s >= 0) bump(defectCount, s, 1);
  }
  const firstRun = new Map<number, Date>();
  for (const run of runs) {
    const seen = firstRun.get(run.order_id);
    if (!seen || run.started_at < seen) firstRun.set(run.order_id, run.started_at);
  }
  const waitSum = zeros();
  const waitN = zeros();
  const landSum = zeros();
  const landN = zeros();
  for (const order of orders) {
    const first = firstRun.get(order.id);
    const s = slot(first ?? null);
    if (first && s >= 0) {
      bump(waitSum, s, (first.getTime() - order.created_at.getTime()) / 1000);
      bump(waitN, s, 1);
    }
    if (order.status === "landed") {
      const l = slot(order.updated_at);
      if (l >= 0) {
        bump(landSum, l, (order.updated_at.getTime() - order.created_at.getTime()) / 1000);
        bump(landN, l, 1);
      }
    }
  }
  const series = (values: number[]) =>
    values.map((v, i) => ({ t: new Date(start + i * HOUR).toISOString(), v: round(v) }));
  const ratio = (a: number[], b: number[]) =>
    a.map((x, i) => {
      const d = b[i] ?? 0;
      return d ? x / d : 0;
    });
  const today = new Date(now).toISOString().slice(0, 10);
  const spentToday = await ledger.metering.spend({ since: new Date(`${today}T00:00:00.000Z`) });
  return {
    hours,
    landedPerHour: series(landed),
    runsPerHour: series(ended),
    yieldPerHour: series(ratio(landed, ended)),
    costPerLanded: series(ratio(spend, landed)),
    spendPerHour: series(spend),
    defectsPerHour: series(defectCount),
    queueWaitSeconds: series(ratio(waitSum, waitN)),
    timeToLandSeconds: series(ratio(landSum, landN)),
    budget: {
      spentUsdToday: round(spentToday.costUsd),
      dailyUsd: limits.dailyUsd,
      spentUsdTotal: round(totals.costUsd),
      totalUsd: limits.totalUsd,
    },
  };
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

function bump(values: number[], at: number, by: number): void {
  values[at] = (values[at] ?? 0) + by;
}
