/**
 * npx tsx bench/budget-limits.ts: what live budget limits cost the gateway's reservations on
 * PostgreSQL (shared mode), where a gateway reads the overrides' version once per batch. In one
 * run, on one fresh schema, it reserves the same bursts of requests through `Budgets` with the
 * overrides watched and without (the limits fixed at start, as before), alternating rounds, and
 * prints reservations per second for each and their ratio. The embedded ledger (exclusive mode)
 * reads nothing per request (it compares a counter in memory), so it is not measured here.
 *
 * BENCH_ROUNDS (4), BENCH_BURSTS (40 per round), BENCH_BURST (64 concurrent reservations),
 * NIGHTSHIFT_TEST_DATABASE_URL (postgres://postgres@127.0.0.1:5432/test).
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Budgets } from "../src/gateway/budgets.ts";
import { openLedger } from "../src/ledger/index.ts";

const URL = process.env.NIGHTSHIFT_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const BURSTS = Number(process.env.BENCH_BURSTS ?? 40);
const BURST = Number(process.env.BENCH_BURST ?? 64);
const schema = `bench_limits_${randomBytes(4).toString("hex")}`;

const ledger = await openLedger({ kind: "postgres", url: URL, schema }, "bench");
try {
  // Limits high enough that nothing is refused: the cost measured is deciding, not refusing.
  const limits = { runTokens: 1e12, dayUsd: 1e9, totalUsd: 1e9 };
  await ledger.budgetLimits.set("max_usd_per_order", 1e9, "bench");
  const variants = {
    fixed: new Budgets(limits, ledger.budgets),
    live: new Budgets(limits, ledger.budgets, { overrides: ledger.budgetLimits }),
  };
  const totals = { fixed: { n: 0, ms: 0 }, live: { n: 0, ms: 0 } };
  let id = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0
      ? (["fixed", "live"] as const)
      : (["live", "fixed"] as const)) {
      const budgets = variants[name];
      const started = performance.now();
      for (let b = 0; b < BURSTS; b++) {
        await Promise.all(
          Array.from({ length: BURST }, (_, i) =>
            budgets.reserve(
              { runId: 1 + (i % 8), orderId: 1 + (i % 8) },
              { tokens: 100, usd: 0.001 },
              `r${id++}`,
            ),
          ),
        );
      }
      totals[name].ms += performance.now() - started;
      totals[name].n += BURSTS * BURST;
    }
  }
  const rate = (t: { n: number; ms: number }) => (t.n / t.ms) * 1000;
  const fixed = rate(totals.fixed);
  const live = rate(totals.live);
  console.log(`reservations/s, overrides fixed at start: ${fixed.toFixed(0)}`);
  console.log(`reservations/s, overrides watched (version read per batch): ${live.toFixed(0)}`);
  console.log(
    `ratio live/fixed: ${(live / fixed).toFixed(3)} (${ROUNDS} rounds of ${BURSTS} bursts of ${BURST})`,
  );
} finally {
  await ledger.close();
  const client = new pg.Client({ connectionString: URL });
  await client.connect();
  await client.query(`drop schema if exists "${schema}" cascade`);
  await client.end();
}
