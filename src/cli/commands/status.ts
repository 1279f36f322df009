import { openFactory } from "../factory.ts";
import { formatTotals } from "../output.ts";

export async function statusCommand(root: string, options: { json?: boolean }): Promise<string> {
  const factory = await openFactory(root, "nightshift status");
  try {
    const { ledger } = factory;
    const [orders, runs, totals] = await Promise.all([
      ledger.listOrders(),
      ledger.listRuns(),
      ledger.totals(),
    ]);
    if (options.json) return JSON.stringify({ orders, runs, totals }, null, 2);
    const lines = [`factory ${factory.config.factory.name} (${factory.root})`, ""];
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
    lines.push("", ...formatTotals(totals, factory.config.agent.model));
    return lines.join("\n");
  } finally {
    await factory.close();
  }
}
