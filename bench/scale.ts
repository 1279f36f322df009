/**
 * Capacity of the ledger as the coordination engine: 4 worker processes sharing one PostgreSQL
 * against 1 worker with the same total of concurrent runs (default 1,000), in one run, each in a
 * fresh database of the server at 127.0.0.1:5432. Runs use a trivial in-process agent (see
 * scale-worker.ts): what is measured is the claim, lease, heartbeat and finish cycle. Prints
 * runs/hour, claim latency p50/p90/p99, and transactions committed per run (pg_stat_database).
 *
 *   npm run bench:scale
 *   SCALE_RUNS=4000 SCALE_CONCURRENCY=1000 SCALE_AGENT_MS=4000 npm run bench:scale
 *   SCALE_SCOPES=ignore npm run bench:scale   # claims that ignore scopes (the line's default is scope-aware)
 */
import { spawn } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { openLedger } from "../src/ledger/index.ts";

function knob(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a whole number of at least 1, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const SERVER = process.env.SCALE_SERVER_URL ?? "postgres://postgres@127.0.0.1:5432";
const runs = knob("SCALE_RUNS", 4_000);
const concurrency = knob("SCALE_CONCURRENCY", 1_000);
const agentMs = knob("SCALE_AGENT_MS", 4_000);
const WORKER = fileURLToPath(new URL("./scale-worker.ts", import.meta.url));

interface WorkerFigures {
  workerId: string;
  finished: number;
  wallMs: number;
  claimMs: number[];
  loopDelayP99Ms: number;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>, database = "postgres"): Promise<T> {
  const client = new pg.Client({ connectionString: `${SERVER}/${database}` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function xactCommits(database: string): Promise<number> {
  return admin(async (c) => {
    // The statistics collector lags; a snapshot cleared first reads the latest counts.
    await c.query("select pg_stat_clear_snapshot()");
    const r = await c.query("select xact_commit from pg_stat_database where datname = $1", [
      database,
    ]);
    return Number(r.rows[0]?.xact_commit ?? 0);
  });
}

function startWorker(url: string, id: string, n: number): Promise<WorkerFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", WORKER, "bench", id, String(n), String(agentMs)],
      { env: { ...process.env, SCALE_DATABASE_URL: url }, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`worker ${id} exited with ${code}; it said: ${out}`));
      else resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as WorkerFigures);
    });
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function measure(workers: number) {
  const database = `nightshift_bench_${process.pid}_${workers}`;
  await admin((c) => c.query(`create database ${database}`));
  const url = `${SERVER}/${database}`;
  try {
    const ledger = await openLedger({ kind: "postgres", url, schema: "bench" }, "bench");
    for (let i = 0; i < runs; i += 500) {
      const batch = Math.min(500, runs - i);
      await ledger.addOrders(
        Array.from({ length: batch }, (_, j) => ({ title: `order ${i + j}` })),
      );
    }
    await ledger.close();
    const before = await xactCommits(database);
    const figures = await Promise.all(
      Array.from({ length: workers }, (_, i) =>
        startWorker(url, `w${i}`, Math.ceil(concurrency / workers)),
      ),
    );
    // Each worker's own clock, from its first claim to its last run's end: start-up left out.
    const wallMs = Math.max(...figures.map((f) => f.wallMs));
    const commits = (await xactCommits(database)) - before;
    const finished = figures.reduce((sum, f) => sum + f.finished, 0);
    const claims = figures.flatMap((f) => f.claimMs).sort((a, b) => a - b);
    return {
      workers,
      finished,
      runsPerHour: (finished / wallMs) * 3_600_000,
      claimP50: percentile(claims, 50),
      claimP90: percentile(claims, 90),
      claimP99: percentile(claims, 99),
      commitsPerRun: commits / finished,
      loopDelayP99: Math.max(...figures.map((f) => f.loopDelayP99Ms)),
      wallS: wallMs / 1000,
    };
  } finally {
    await admin((c) => c.query(`drop database if exists ${database} with (force)`));
  }
}

console.log(
  `bench:scale: ${runs} runs, ${concurrency} concurrent in total, simulated agent ~${agentMs} ms, claims ${process.env.SCALE_SCOPES === "ignore" ? "ignoring scopes" : "scope-aware (the line's default)"}, PostgreSQL at ${SERVER.replace(/\/\/[^@]*@/, "//")}`,
);
const one = await measure(1);
const four = await measure(4);
for (const r of [one, four]) {
  console.log(
    `${r.workers} worker(s) x ${Math.ceil(concurrency / r.workers)} runs: ${r.finished} runs in ${r.wallS.toFixed(1)} s = ${Math.round(r.runsPerHour).toLocaleString("en-US")} runs/hour; claim p50 ${r.claimP50.toFixed(1)} ms, p90 ${r.claimP90.toFixed(1)} ms, p99 ${r.claimP99.toFixed(1)} ms; ${r.commitsPerRun.toFixed(1)} commits/run; worker event-loop delay p99 ${r.loopDelayP99.toFixed(1)} ms; load average ${os.loadavg()[0]?.toFixed(1)}`,
  );
}
console.log(
  `4 workers / 1 worker: throughput x${(four.runsPerHour / one.runsPerHour).toFixed(2)}, claim p99 x${(four.claimP99 / one.claimP99).toFixed(2)}; target claim p99 < 50 ms at ${concurrency} concurrent: ${four.claimP99 < 50 && one.claimP99 < 50 ? "met" : "NOT met"}`,
);
