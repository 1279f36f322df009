import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { isNightshiftError } from "../../errors/index.ts";
import type { Ledger, LedgerTotals, Run, WorkOrder } from "../../ledger/index.ts";
import { locateFactory, openFactory } from "../factory.ts";
import { formatTotals } from "../output.ts";

interface StatusData {
  orders: WorkOrder[];
  runs: Run[];
  totals: LedgerTotals;
  /** Set when read from the snapshot a running line keeps. */
  snapshot?: { pid: number; at: string };
}

export async function statusCommand(root: string, options: { json?: boolean }): Promise<string> {
  const location = await locateFactory(root);
  let data: StatusData;
  try {
    const factory = await openFactory(root, "nightshift status");
    try {
      data = await collectStatus(factory.ledger);
    } finally {
      await factory.close();
    }
  } catch (error) {
    // A running line holds the embedded ledger; it keeps a snapshot for exactly this.
    if (!isNightshiftError(error) || error.code !== "ledger_busy") throw error;
    const snapshot = await readSnapshot(location.stateDir);
    if (!snapshot) throw error;
    data = snapshot;
  }
  if (options.json) return JSON.stringify(data, null, 2);
  return renderStatus(
    data,
    location.config.factory.name,
    location.root,
    location.config.agent.model,
  );
}

export async function collectStatus(ledger: Ledger): Promise<StatusData> {
  const [orders, runs, totals] = await Promise.all([
    ledger.listOrders(),
    ledger.listRuns(),
    ledger.totals(),
  ]);
  return { orders, runs, totals };
}

function renderStatus(data: StatusData, name: string, root: string, model: string): string {
  const { orders, runs, totals } = data;
  const lines = [`factory ${name} (${root})`];
  if (data.snapshot)
    lines.push(
      `live view from nightshift run (pid ${data.snapshot.pid}) as of ${data.snapshot.at}`,
    );
  lines.push("");
  if (orders.length === 0) lines.push('no work orders yet: nightshift add "title" --spec "..."');
  for (const order of orders) {
    const last = runs.filter((r) => r.order_id === order.id).at(-1);
    const detail =
      order.status === "landed"
        ? `landed ${order.landed_commit?.slice(0, 10)}`
        : (order.failure_reason ??
          last?.outcome_reason ??
          (last ? `run ${last.id} ${last.phase}` : ""));
    lines.push(
      `WO-${order.id}`.padEnd(7) +
        order.status.padEnd(10) +
        `${order.attempts} att  ` +
        order.title.slice(0, 50).padEnd(52) +
        detail,
    );
  }
  lines.push("", ...formatTotals(totals, model));
  return lines.join("\n");
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
