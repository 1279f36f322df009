import { Gauge, Registry } from "prom-client";
import type { Ledger } from "../ledger/index.ts";
import { type LedgerFigures, ledgerFigures } from "./figures.ts";

/** What a metrics endpoint serves: the exposition text and its content type. */
export interface MetricsSource {
  contentType: string;
  render(): Promise<string>;
}

const ORDER_STATUSES = ["waiting", "queued", "running", "landed", "failed", "cancelled"];
const RUN_STATUSES = ["running", "landed", "rejected", "failed", "abandoned"];

/**
 * The factory's Prometheus metrics, read from the ledger at each scrape: every worker sharing a
 * ledger serves the same figures, and nothing is lost by a restart. The figures are totals, so
 * the growing ones are also exposed as gauges (a counter must only grow within one process);
 * `rate()` and `increase()` work on them as long as the ledger is not reset.
 */
export function ledgerMetrics(ledger: Ledger): MetricsSource {
  const registry = new Registry();
  let scrape: Promise<LedgerFigures> | undefined;
  // One ledger read per scrape, shared by every gauge's collect().
  const figures = () => {
    scrape ??= ledgerFigures(ledger).finally(() => {
      setImmediate(() => {
        scrape = undefined;
      });
    });
    return scrape;
  };
  const gauge = (
    name: string,
    help: string,
    read: (f: LedgerFigures, set: (value: number, labels?: Record<string, string>) => void) => void,
    labelNames: string[] = [],
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const f = await figures();
        read(f, (value, labels) => (labels ? this.set(labels, value) : this.set(value)));
      },
    });
  gauge(
    "nightshift_work_orders",
    "Work orders by status.",
    (f, set) => {
      for (const s of ORDER_STATUSES) set(f.orders[s] ?? 0, { status: s });
    },
    ["status"],
  );
  gauge(
    "nightshift_runs",
    "Runs by status.",
    (f, set) => {
      for (const s of RUN_STATUSES) set(f.runs[s] ?? 0, { status: s });
    },
    ["status"],
  );
  gauge("nightshift_landed_changes", "Changes landed on main.", (f, set) => set(f.landedChanges));
  gauge("nightshift_model_requests", "Model requests metered by the gateway.", (f, set) =>
    set(f.modelRequests),
  );
  gauge(
    "nightshift_model_tokens",
    "Tokens metered, by kind.",
    (f, set) => {
      set(f.inputTokens, { kind: "input" });
      set(f.outputTokens, { kind: "output" });
      set(f.cachedInputTokens, { kind: "cached_input" });
    },
    ["kind"],
  );
  gauge("nightshift_cost_usd", "Metered model spend in US dollars.", (f, set) => set(f.costUsd));
  gauge(
    "nightshift_cost_per_landed_change_usd",
    "Metered spend divided by changes landed (0 before the first landing).",
    (f, set) => set(f.landedChanges > 0 ? f.costUsd / f.landedChanges : 0),
  );
  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}
