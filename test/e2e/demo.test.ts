import { rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoCommand } from "../../src/cli/commands/demo.ts";
import { statusCommand } from "../../src/cli/commands/status.ts";
import type { LedgerTotals } from "../../src/ledger/index.ts";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { git, landedOrderTrailers, mainHistory, testsPassAt } from "../support/line.ts";

const ORDERS = 8;

describe("nightshift demo", () => {
  const printed: string[] = [];
  let repo: string;
  let totals: LedgerTotals;
  let ledger: Ledger;

  beforeAll(async () => {
    ({ repo, totals } = await demoCommand(
      { orders: ORDERS, concurrency: 3, brokenRate: 0.3, giveUpRate: 0.1, seed: 11 },
      (line) => printed.push(line),
    ));
    ledger = await openLedger({
      kind: "embedded",
      dataDir: path.join(repo, ".nightshift", "ledger"),
    });
  }, 240_000);
  let ledgerOpen = true;
  afterAll(async () => {
    if (ledgerOpen) await ledger?.close();
    if (repo) await rm(repo, { recursive: true, force: true });
  });

  it("says that the model is simulated, before and after", () => {
    expect(printed[0]).toMatch(/model is SIMULATED/);
    expect(printed.join("\n")).toMatch(/summary \(model SIMULATED\)/);
    expect(printed.join("\n")).toMatch(/cost +\$\d+\.\d{4} \(SIMULATED/);
  });

  it("prints one progress line per state change with a running count", () => {
    const progress = printed.filter((line) => /^\[ ?\d+\/8\] WO-\d+ /.test(line));
    expect(progress.length).toBeGreaterThanOrEqual(ORDERS * 5);
    const counts = progress.map((line) => Number(/^\[ ?(\d+)\//.exec(line)?.[1]));
    expect(counts.at(-1)).toBe(ORDERS);
  });

  it("ends every order landed or failed, and the summary matches the ledger", async () => {
    const orders = await ledger.listOrders();
    expect(orders).toHaveLength(ORDERS);
    expect(orders.every((o) => o.status === "landed" || o.status === "failed")).toBe(true);
    expect(totals.orders.landed).toBe(orders.filter((o) => o.status === "landed").length);
    expect(totals.orders.landed).toBeGreaterThanOrEqual(ORDERS - 2);
    const runs = await ledger.listRuns();
    expect(runs).toHaveLength(orders.reduce((sum, o) => sum + o.attempts, 0));
    expect(totals.runs).toBe(runs.length);
    expect(totals.inputTokens).toBe(runs.reduce((sum, r) => sum + r.input_tokens, 0));
    expect(totals.inputTokens).toBeGreaterThan(0);
    const summary = printed.join("\n");
    expect(summary).toContain(
      `orders   ${totals.orders.landed} landed, ${totals.orders.failed} failed`,
    );
    expect(summary).toContain(`runs     ${runs.length}`);
    expect(summary).toContain(`repo     ${repo}`);
  });

  it("says where the time went: the agent, each gate by stage, the merge queue", async () => {
    const summary = printed.join("\n");
    const runs = await ledger.listRuns();
    const gates = (await Promise.all(runs.map((r) => ledger.listGateResults(r.id)))).flat();
    const candidateTests = gates.filter((g) => g.gate === "test" && g.stage === "candidate");
    expect(candidateTests.length).toBeGreaterThan(0);
    expect(summary).toContain(`time spent, summed over ${runs.length} runs`);
    expect(summary).toMatch(/ {2}agent {4}\d+\.\d s/);
    const seconds = (candidateTests.reduce((sum, g) => sum + g.duration_ms, 0) / 1000).toFixed(1);
    expect(summary).toContain(
      `gate     test (candidate): ${seconds} s over ${candidateTests.length} runs`,
    );
    expect(summary).toMatch(/ {2}queue {4}\d+\.\d s waiting to land/);
  });

  it("exercised the ratchet: some first attempts were rejected by the test gate", async () => {
    const runs = await ledger.listRuns();
    expect(runs.some((r) => r.status === "rejected")).toBe(true);
  });

  it("landed each landed order exactly once, and nothing else", async () => {
    const landed = (await ledger.listOrders()).filter((o) => o.status === "landed");
    const trailers = landedOrderTrailers(repo);
    expect(trailers.sort()).toEqual(landed.map((o) => `WO-${o.id}`).sort());
    expect(mainHistory(repo)).toHaveLength(1 + landed.length);
    expect(await ledger.listMerges()).toHaveLength(landed.length);
  });

  it("kept main green at every commit", () => {
    for (const commit of mainHistory(repo)) expect(testsPassAt(repo, commit), commit).toBe(true);
  }, 120_000);

  it("filed a defect with every attempt attached for each order that failed", async () => {
    const failed = (await ledger.listOrders()).filter((o) => o.status === "failed");
    const defects = await ledger.listDefects();
    for (const order of failed) {
      const defect = defects.find((d) => d.order_id === order.id && d.kind === "order_failed");
      expect(defect, `WO-${order.id}`).toBeDefined();
      const evidence = defect?.evidence as { attempts: unknown[] };
      expect(evidence.attempts).toHaveLength(order.attempts);
    }
  });

  it("leaves the sample repository checked out on the landed main, clean", () => {
    expect(git(repo, "rev-parse", "HEAD")).toBe(git(repo, "rev-parse", "main"));
    expect(git(repo, "status", "--porcelain")).toBe("");
  });

  // Last: it closes the test's ledger so that the CLI can open it.
  it("nightshift status shows why each turned-back candidate failed", async () => {
    const rejected = (await ledger.listRuns()).filter((r) => r.status === "rejected");
    await ledger.close();
    ledgerOpen = false;
    const text = await statusCommand(repo, {});
    expect(text).toContain("candidates turned back by the ratchet (why):");
    for (const run of rejected) {
      const line = text.split("\n").find((l) => l.includes(`run ${run.id} (attempt`));
      expect(line, `run ${run.id}`).toMatch(
        /: (test gate|[a-z-]+ gate in the merge queue|merge queue)/,
      );
      expect(line).toMatch(/not ok|fail|assert|expected|conflict|ejected/i);
    }
  });
});
