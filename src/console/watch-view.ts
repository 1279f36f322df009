import type { LineView, Station } from "./schema.ts";
import { STATIONS } from "./schema.ts";

const LABEL: Record<Station, string> = {
  waiting: "waiting",
  queued: "queued",
  running: "running",
  gating: "gating",
  merging: "merge queue",
  landed: "landed",
  proposed: "pull request",
  failed: "failed",
  defect: "defect",
  cancelled: "cancelled",
};

/** One line per change, for a log or a pipe: the time, the line's state, the counts, throughput. */
export function snapshotLine(view: LineView): string {
  const counts = STATIONS.map((s) => `${LABEL[s]} ${view.counts[s]}`).join(" · ");
  const state = view.paused.paused ? `PAUSED by ${view.paused.by}` : "working";
  const t = view.throughput;
  return `${view.at.slice(11, 19)} ${state} | ${counts} | ${t.landedLastHour} landed/h · $${t.costUsdTotal.toFixed(4)} · ${view.defects.length} open defect(s)`;
}

/** The whole screen of `nightshift watch` on a terminal. */
export function screen(view: LineView, width = 100): string {
  const rows: string[] = [];
  const state = view.paused.paused
    ? `PAUSED by ${view.paused.by}${view.paused.reason ? ` (${view.paused.reason})` : ""}`
    : "working";
  rows.push(`nightshift · ${view.factory} · ${state} · ${new Date(view.at).toLocaleTimeString()}`);
  if (view.mainFailing) rows.push(`main fails its gates: ${view.mainFailing.cause}`);
  const t = view.throughput;
  rows.push(
    `${t.landedLastHour} landed/h · ${t.runsLastHour} runs/h · $${t.costUsdTotal.toFixed(4)} · ${t.tokensTotal.toLocaleString()} tokens`,
  );
  rows.push("");
  rows.push(STATIONS.map((s) => `${LABEL[s]} ${view.counts[s]}`).join("  "));
  rows.push("─".repeat(Math.min(width, 100)));
  for (const station of STATIONS) {
    const orders = view.orders.filter((o) => o.station === station);
    if (orders.length === 0 || station === "cancelled") continue;
    rows.push(`${LABEL[station].toUpperCase()}`);
    for (const order of orders.slice(-8)) {
      const run = order.liveRunId ?? order.lastRunId;
      const line = `  WO-${order.id} ${order.title}${run ? `  (run ${run})` : ""}`;
      rows.push(line.length > width ? `${line.slice(0, width - 1)}…` : line);
    }
  }
  if (view.defects.length > 0) {
    rows.push("OPEN DEFECTS");
    for (const d of view.defects.slice(0, 5))
      rows.push(`  D-${d.id} ${d.kind}: ${d.summary}`.slice(0, width));
  }
  return rows.join("\n");
}
