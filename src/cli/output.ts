// prices.ts itself, not gateway/index.ts: `status` prints totals and must not load the gateway.
import { priceOf } from "../gateway/prices.ts";
import type { LedgerTotals, TimeSpent } from "../ledger/index.ts";
import type { LineProgress } from "../line/index.ts";

/** One line per state change: `[ 3/12] WO-3 landed     Add slugify(text) · landed as 1a2b3c4d5e`. */
export function formatProgress(p: LineProgress): string {
  const width = String(p.total).length;
  const count = `[${String(p.done).padStart(width)}/${p.total}]`;
  const run = p.runId ? ` run ${p.runId}` : "";
  return `${count} WO-${p.orderId} ${p.state.padEnd(9)} ${p.title}${run} · ${p.message}`;
}

export function formatTotals(totals: LedgerTotals, model: string, wallMs?: number): string[] {
  const o = totals.orders;
  const simulated = priceOf(model)?.simulated ?? false;
  const lines = [
    `orders   ${o.landed} landed, ${o.proposed ? `${o.proposed} proposed, ` : ""}${o.failed} failed, ${o.queued} queued, ${o.running} running, ${o.cancelled} cancelled`,
    `runs     ${totals.runs}`,
    `tokens   ${totals.inputTokens.toLocaleString("en-US")} in, ${totals.outputTokens.toLocaleString("en-US")} out`,
    `cost     $${totals.costUsd.toFixed(4)}${simulated ? " (SIMULATED: priced as if a real model had been used)" : ""}`,
  ];
  if (wallMs !== undefined) lines.push(`time     ${(wallMs / 1000).toFixed(1)} s wall`);
  return lines;
}

/** Where the time went, summed over runs: the agent, each gate by stage, the merge queue. */
export function formatTimeSpent(spent: TimeSpent): string[] {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const gates = [...spent.gates].sort((a, b) => b.ms - a.ms);
  return [
    `time spent, summed over ${spent.runs} runs (they overlap):`,
    `  agent    ${s(spent.agentMs)}`,
    ...gates.map(
      (g) =>
        `  gate     ${g.name}: ${s(g.ms)} over ${g.count} run${g.count === 1 ? "" : "s"}, ${s(g.ms / g.count)} each`,
    ),
    `  queue    ${s(spent.queueMs)} waiting to land, besides the merge gates`,
  ];
}
