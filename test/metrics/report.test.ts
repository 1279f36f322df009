import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundledPrices, Gateway } from "../../src/gateway/index.ts";
import type { Ledger, NewModelRequest } from "../../src/ledger/index.ts";
import { factoryReport, gitLinesLanded, ledgerMetrics } from "../../src/metrics/index.ts";
import { ledgerBackends, openTestLedger } from "../support/ledgers.ts";

const gitEnv = { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" };
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=T", "-c", "user.email=t@example.com", ...args], {
    cwd,
    env: gitEnv,
    encoding: "utf8",
  }).trim();

/**
 * A ledger with a known history: four orders, five runs (two landed with real commits, one
 * rejected, one failed, one still running), and model requests of several runs and of the
 * factory itself. The report's figures are checked against sums taken here from the raw rows.
 */
async function seed(ledger: Ledger, repo: string) {
  const orders = await ledger.addOrders([
    { title: "a" },
    { title: "b" },
    { title: "c" },
    { title: "d" },
  ]);
  const claim = () =>
    ledger.claimNext({ workerId: "w", leaseMs: 60_000, agent: "builtin", model: "sim-demo" });
  const commit = async (file: string, lines: number) => {
    const before = git(repo, "rev-parse", "HEAD");
    await writeFile(
      path.join(repo, file),
      Array.from({ length: lines }, (_, i) => `l${i}\n`).join(""),
    );
    git(repo, "add", "-A");
    git(repo, "commit", "-qm", file);
    return { previousMain: before, landedCommit: git(repo, "rev-parse", "HEAD") };
  };
  const first = await claim();
  await ledger.finishRun(first!.run.id, {
    outcome: "retry",
    runStatus: "rejected",
    reason: "tests failed",
    feedback: "x",
  });
  const runs = [first!.run.id];
  for (const lines of [7, 12]) {
    const c = await claim();
    runs.push(c!.run.id);
    await ledger.finishRun(c!.run.id, {
      outcome: "landed",
      reason: "ok",
      ...(await commit(`f${lines}.txt`, lines)),
    });
  }
  const failed = await claim();
  runs.push(failed!.run.id);
  await ledger.finishRun(failed!.run.id, {
    outcome: "failed",
    runStatus: "failed",
    reason: "gave up",
  });
  const running = await claim();
  runs.push(running?.run.id ?? 0);
  const requests: NewModelRequest[] = runs.flatMap((runId, i) =>
    [0, 1].map((k) => ({
      request_id: `r${i}-${k}`,
      run_id: runId || null,
      order_id: orders[0]!.id,
      protocol: "openai-chat",
      model: "sim-demo",
      status: 200,
      stream: false,
      input_tokens: 1000 * (i + 1) + k,
      output_tokens: 100 * (i + 1),
      cached_input_tokens: 10 * k,
      cost_usd: 0.01 * (i + 1) + 0.001 * k,
      usage_estimated: false,
      latency_ms: 5,
      attempts: 1,
      error: null,
    })),
  );
  // The planner's request: the factory's own, no run.
  requests.push({
    ...requests[0]!,
    request_id: "planner",
    run_id: null,
    order_id: null,
    cost_usd: 0.5,
  });
  await ledger.metering.recordModelRequests(requests);
}

describe.each(ledgerBackends)("report and /metrics on $name", ({ location }) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  let repo: string;

  beforeAll(async () => {
    ({ ledger, dispose } = await openTestLedger(location()));
    repo = await mkdtemp(path.join(tmpdir(), "ns-report-"));
    git(repo, "init", "-q", "-b", "main");
    await writeFile(path.join(repo, "README"), "x\n");
    git(repo, "add", "-A");
    git(repo, "commit", "-qm", "init");
    await seed(ledger, repo);
  });
  afterAll(async () => {
    await dispose();
    await rm(repo, { recursive: true, force: true });
  });

  it("matches figures computed from the raw rows", async () => {
    const report = await factoryReport(ledger, gitLinesLanded(repo), {
      supervisors: 2,
      salaryUsd: 250_000,
    });
    const runs = await ledger.db.selectFrom("runs").selectAll().execute();
    const merges = await ledger.db.selectFrom("merges").selectAll().execute();
    const requests = await ledger.db.selectFrom("model_requests").selectAll().execute();
    const ended = runs.filter((r) => r.status !== "running").length;
    const cost = requests.reduce((a, r) => a + r.cost_usd, 0);
    const tokens = requests.reduce((a, r) => a + r.input_tokens + r.output_tokens, 0);
    const lines = 7 + 12;

    expect(runs).toHaveLength(5);
    expect(report.runs).toBe(5);
    expect(report.endedRuns).toBe(ended);
    expect(report.landedChanges).toBe(merges.length);
    expect(merges).toHaveLength(2);
    expect(report.yield).toBeCloseTo(merges.length / ended, 10);
    expect(report.modelRequests).toBe(requests.length);
    expect(report.costUsd).toBeCloseTo(cost, 10);
    expect(report.costPerLandedChangeUsd).toBeCloseTo(cost / merges.length, 10);
    expect(report.linesLanded).toBe(lines);
    expect(report.tokens).toBe(tokens);
    expect(report.tokensPerLandedLine).toBeCloseTo(tokens / lines, 10);
    expect(report.computePerSupervisorUsd).toBeCloseTo(cost / 2, 10);
    // All requests were metered within a second: too short a span for a daily rate.
    expect(report.spendPerDayUsd).toBeNull();
  });

  it("serves the same figures as Prometheus metrics from the gateway", async () => {
    const gateway = new Gateway({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: {},
      metrics: ledgerMetrics(ledger),
    });
    try {
      const reply = await gateway.app.request("/metrics");
      expect(reply.status).toBe(200);
      expect(reply.headers.get("content-type")).toContain("text/plain");
      const text = await reply.text();
      const value = (series: string) => {
        const line = text.split("\n").find((l) => l.startsWith(`${series} `));
        return line === undefined ? undefined : Number(line.slice(series.length + 1));
      };
      const requests = await ledger.db.selectFrom("model_requests").selectAll().execute();
      expect(value("nightshift_landed_changes")).toBe(2);
      expect(value('nightshift_runs{status="landed"}')).toBe(2);
      expect(value('nightshift_runs{status="rejected"}')).toBe(1);
      expect(value('nightshift_work_orders{status="landed"}')).toBe(2);
      expect(value("nightshift_model_requests")).toBe(requests.length);
      expect(value("nightshift_cost_usd")).toBeCloseTo(
        requests.reduce((a, r) => a + r.cost_usd, 0),
        10,
      );
      expect(value('nightshift_model_tokens{kind="output"}')).toBe(
        requests.reduce((a, r) => a + r.output_tokens, 0),
      );
    } finally {
      await gateway.close();
    }
  });
});
