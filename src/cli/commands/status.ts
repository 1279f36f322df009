import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { isNightshiftError } from "../../errors/index.ts";
import type {
  Defect,
  Ledger,
  LedgerTotals,
  Run,
  WorkerView,
  WorkOrder,
} from "../../ledger/index.ts";
import { ledgerLocationFor } from "../../ledger/location.ts";
import { locateFactory, openFactory } from "../factory.ts";
import { formatTotals } from "../output.ts";
import { readStatusCache, writeStatusCache } from "../status-cache.ts";

/** Why a candidate was turned back: the gate that failed it and the telling part of its output. */
export interface Rejection {
  orderId: number;
  runId: number;
  attempt: number;
  reason: string;
  gate?: string;
  stage?: "candidate" | "merge";
  excerpt?: string;
}

interface StatusData {
  orders: WorkOrder[];
  runs: Run[];
  totals: LedgerTotals;
  rejections?: Rejection[];
  /** Open defects: what the supervisor should look at (escape attempts, ...). */
  defects?: Defect[];
  /** Set when the latest check of main failed: why the line pauses and starts no run. */
  paused?: { commit: string; cause: string; at: string };
  /** Set when the line is paused in the ledger (by its circuit breaker or a person). */
  lineState?: { reason: string; by: string; at: string };
  /** Every worker that registered with the ledger, newest first (see `nightshift worker`). */
  workers?: WorkerView[];
  /** The worker that leads the merge queue now, when one holds the lease. */
  mergeLeader?: string;
  /** Set when read from the snapshot a running line keeps. */
  snapshot?: { pid: number; at: string };
}

export async function statusCommand(root: string, options: { json?: boolean }): Promise<string> {
  const location = await locateFactory(root);
  const ledger = ledgerLocationFor(location.stateDir);
  const dataDir = ledger.kind === "embedded" ? ledger.dataDir : undefined;
  let data: StatusData | undefined =
    dataDir === undefined ? undefined : await readStatusCache(location.stateDir, dataDir);
  try {
    if (!data) {
      const factory = await openFactory(root, "nightshift status");
      try {
        data = await collectStatus(factory.ledger);
      } finally {
        await factory.close();
      }
      // Only a cache: a status that cannot write it still answers.
      if (dataDir !== undefined)
        await writeStatusCache(location.stateDir, dataDir, data).catch(() => undefined);
    }
  } catch (error) {
    // A running line holds the embedded ledger; it keeps a snapshot for exactly this.
    if (!isNightshiftError(error) || error.code !== "ledger_busy") throw error;
    const snapshot = await readSnapshot(location.stateDir);
    if (!snapshot) throw error;
    data = snapshot;
  }
  if (options.json) return JSON.stringify(data, null, 2);
  return renderStatus(data, location.config.factory.name, location.root, location.config.agent);
}

export async function collectStatus(ledger: Ledger): Promise<StatusData> {
  const [orders, runs, totals, defects, baseline, state, workers, leader] = await Promise.all([
    ledger.listOrders(),
    ledger.listRuns(),
    ledger.totals(),
    ledger.listDefects({ status: "open" }),
    ledger.acceptance.latestBaseline(),
    ledger.line.state(),
    ledger.workers.list(),
    ledger.workers.leader(),
  ]);
  const rejections: Rejection[] = [];
  for (const run of runs.filter((r) => r.status === "rejected")) {
    const failed = (await ledger.listGateResults(run.id)).find((g) => !g.passed);
    rejections.push({
      orderId: run.order_id,
      runId: run.id,
      attempt: run.attempt,
      reason: run.outcome_reason ?? "rejected",
      ...(failed
        ? { gate: failed.gate, stage: failed.stage, excerpt: telling(failed.output) }
        : {}),
    });
  }
  const paused =
    baseline && !baseline.passed
      ? {
          commit: baseline.commit_sha,
          cause: baseline.cause,
          at: new Date(baseline.at).toISOString(),
        }
      : undefined;
  const lineState = state.paused
    ? {
        reason: state.reason || "no reason given",
        by: state.changed_by || "unknown",
        at: state.changed_at.toISOString(),
      }
    : undefined;
  return {
    orders,
    runs,
    totals,
    rejections,
    defects,
    ...(paused ? { paused } : {}),
    ...(lineState ? { lineState } : {}),
    workers,
    ...(leader ? { mergeLeader: leader.workerId } : {}),
  };
}

export function renderStatus(
  data: StatusData,
  name: string,
  root: string,
  agent: { driver: string; model: string },
): string {
  const { orders, runs, totals } = data;
  const lines = [`factory ${name} (${root})`];
  if (data.snapshot)
    lines.push(
      `live view from nightshift run (pid ${data.snapshot.pid}) as of ${data.snapshot.at}`,
    );
  if (data.paused) {
    lines.push(
      `LINE PAUSED: main ${data.paused.commit.slice(0, 10)} itself fails the gates (checked ${data.paused.at}); no agent run starts and no order is charged until it passes:`,
      `  ${data.paused.cause}`,
    );
  }
  if (data.lineState) {
    lines.push(
      `LINE PAUSED by ${data.lineState.by} since ${data.lineState.at}; no run starts until \`nightshift resume\`:`,
      `  ${data.lineState.reason}`,
    );
  }
  lines.push("");
  if (orders.length === 0) lines.push('no work orders yet: nightshift add "title" --spec "..."');
  for (const order of orders) {
    const last = runs.filter((r) => r.order_id === order.id).at(-1);
    const detail =
      order.status === "landed"
        ? `landed ${order.landed_commit?.slice(0, 10)}`
        : order.status === "proposed" && order.pull_request_url
          ? `pull request ${order.pull_request_url}`
          : (order.failure_reason ??
            last?.outcome_reason ??
            (last ? `run ${last.id} ${last.phase}` : ""));
    // Only where the order departs from the factory's [agent], so the usual line stays short.
    const own = [
      order.driver && order.driver !== agent.driver ? order.driver : "",
      order.model && order.model !== agent.model ? order.model : "",
    ].filter(Boolean);
    lines.push(
      `WO-${order.id}`.padEnd(7) +
        order.status.padEnd(10) +
        `${order.attempts} att  ` +
        order.title.slice(0, 50).padEnd(52) +
        (own.length > 0 ? `[${own.join("/")}] ` : "") +
        detail,
    );
  }
  if (data.rejections && data.rejections.length > 0) {
    lines.push("", "candidates turned back by the ratchet (why):");
    for (const r of data.rejections) {
      const where = r.gate
        ? `${r.gate} gate${r.stage === "merge" ? " in the merge queue" : ""}`
        : "merge queue";
      lines.push(
        `  WO-${r.orderId} run ${r.runId} (attempt ${r.attempt}): ${where}: ${r.excerpt ?? r.reason}`,
      );
    }
  }
  const defects = data.defects ?? [];
  if (defects.length > 0) {
    lines.push("", `open defects (${defects.length}):`);
    for (const d of defects) lines.push(`  D-${d.id}  ${d.kind.padEnd(16)} ${d.summary}`);
  }
  lines.push(...renderWorkers(data));
  lines.push("", ...formatTotals(totals, agent.model));
  return lines.join("\n");
}

/** Workers still registered as live, or stopped within the last hour; the rest is history. */
const STOPPED_SHOWN_SECONDS = 3_600;

function renderWorkers(data: StatusData): string[] {
  const shown = (data.workers ?? []).filter(
    (w) => w.state !== "stopped" || w.silentSeconds < STOPPED_SHOWN_SECONDS,
  );
  if (shown.length === 0) return [];
  const lines = ["", `workers (${shown.length}):`];
  for (const w of shown) {
    const leads = data.mergeLeader === w.id ? "  merge leader" : "";
    lines.push(
      `  ${w.host.padEnd(20)} pid ${String(w.pid).padEnd(8)} ${w.state.padEnd(9)} ` +
        `${w.runs}/${w.concurrency} runs  heartbeat ${formatAgo(w.silentSeconds)} ago${leads}`,
    );
  }
  return lines;
}

function formatAgo(seconds: number): string {
  if (seconds < 120) return `${Math.max(0, Math.round(seconds))}s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3_600)}h`;
}

const SNAPSHOT = "status.json";

/** Written by a running line after state changes, so `status` works while it holds the ledger. */
export async function writeSnapshot(stateDir: string, ledger: Ledger): Promise<void> {
  const data: StatusData = {
    ...(await collectStatus(ledger)),
    snapshot: { pid: process.pid, at: new Date().toISOString() },
  };
  const file = path.join(stateDir, SNAPSHOT);
  await writeFile(`${file}.tmp`, JSON.stringify(data));
  await rename(`${file}.tmp`, file);
}

async function readSnapshot(stateDir: string): Promise<StatusData | undefined> {
  try {
    return JSON.parse(await readFile(path.join(stateDir, SNAPSHOT), "utf8")) as StatusData;
  } catch {
    return undefined;
  }
}

/** The line of a gate's output that says most about the failure, for a one-line status. */
function telling(output: string): string {
  const lines = output
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  // Most specific first: a failing test's name, then anything that says what went wrong.
  const patterns = [
    /^not ok/i,
    /violat|found|rejected|failed:|conflict/i,
    /assert|expected|error/i,
  ];
  let pick: string | undefined;
  for (const pattern of patterns) {
    pick = lines.find((l) => pattern.test(l));
    if (pick) break;
  }
  pick ??= lines.at(-1) ?? "";
  return pick.length > 160 ? `${pick.slice(0, 157)}...` : pick;
}
