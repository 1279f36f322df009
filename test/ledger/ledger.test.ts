import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isNightshiftError } from "../../src/errors/index.ts";
import type { Ledger } from "../../src/ledger/index.ts";
import { ledgerBackends, openTestLedger } from "../support/ledgers.ts";

const claimOptions = { workerId: "w1", leaseMs: 60_000, agent: "builtin", model: "sim" };

describe.each(ledgerBackends)("the ledger on $name", ({ location }) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    ({ ledger, dispose } = await openTestLedger(location()));
  });
  afterEach(async () => {
    await dispose();
  });

  it("hands out the most urgent queued order first, once", async () => {
    await ledger.addOrders([
      { title: "low", priority: 0 },
      { title: "high", priority: 5 },
    ]);
    const first = await ledger.claimNext(claimOptions);
    const second = await ledger.claimNext(claimOptions);
    const third = await ledger.claimNext(claimOptions);
    expect(first?.order.title).toBe("high");
    expect(first?.order.status).toBe("running");
    expect(first?.run.attempt).toBe(1);
    expect(second?.order.title).toBe("low");
    expect(third).toBeNull();
  });

  it("gives concurrent claimers different orders", async () => {
    await ledger.addOrders(Array.from({ length: 6 }, (_, i) => ({ title: `order ${i}` })));
    const claims = await Promise.all(
      Array.from({ length: 8 }, () => ledger.claimNext(claimOptions)),
    );
    const ids = claims.flatMap((c) => (c ? [c.order.id] : []));
    expect(ids).toHaveLength(6);
    expect(new Set(ids).size).toBe(6);
  });

  it("holds an order back until its dependencies land, and fails it when one fails", async () => {
    await ledger.addOrders([
      { title: "base", key: "base" },
      { title: "on top", key: "top", dependsOn: ["base"] },
      { title: "other", key: "other", dependsOn: ["doomed"] },
      { title: "doomed", key: "doomed", priority: -1 },
    ]);
    const base = await ledger.claimNext(claimOptions);
    expect(base?.order.key).toBe("base");
    const doomed = await ledger.claimNext(claimOptions);
    expect(doomed?.order.key).toBe("doomed");
    expect(await ledger.claimNext(claimOptions)).toBeNull();

    await ledger.finishRun(base!.run.id, {
      outcome: "landed",
      reason: "tests passed",
      previousMain: "a".repeat(40),
      landedCommit: "b".repeat(40),
    });
    const top = await ledger.claimNext(claimOptions);
    expect(top?.order.key).toBe("top");

    await ledger.finishRun(doomed!.run.id, { outcome: "failed", runStatus: "failed", reason: "x" });
    const blocked = await ledger.failBlockedOrders();
    expect(blocked.map((o) => o.key)).toEqual(["other"]);
    expect(blocked[0]?.failure_reason).toContain('dependency "doomed"');
  });

  it("rejects a batch with an unknown dependency or a reused key and adds none of it", async () => {
    await ledger.addOrders([{ title: "first", key: "first" }]);
    const unknownDep = ledger.addOrders([
      { title: "fine" },
      { title: "bad", dependsOn: ["missing"] },
    ]);
    await expect(unknownDep).rejects.toMatchObject({ code: "order_invalid" });
    await expect(unknownDep).rejects.toThrow(/depends on unknown key "missing"/);
    await expect(ledger.addOrders([{ title: "again", key: "first" }])).rejects.toThrow(
      /already used/,
    );
    expect((await ledger.listOrders()).map((o) => o.title)).toEqual(["first"]);
  });

  it("sends a failed run's order back with feedback, and records every transition", async () => {
    const [order] = await ledger.addOrders([{ title: "retry me" }]);
    const claim = await ledger.claimNext(claimOptions);
    await ledger.setRunPhase(claim!.run.id, "gates", { candidate_commit: "c".repeat(40) });
    await ledger.recordGate({
      run_id: claim!.run.id,
      gate: "test",
      stage: "candidate",
      commit_sha: "c".repeat(40),
      passed: false,
      exit_code: 1,
      timed_out: false,
      output: "not ok 1",
      duration_ms: 12,
    });
    const { order: after } = await ledger.finishRun(claim!.run.id, {
      outcome: "retry",
      runStatus: "rejected",
      reason: "test gate failed",
      feedback: "not ok 1",
    });
    expect(after.status).toBe("queued");
    expect(after.feedback).toBe("not ok 1");
    const again = await ledger.claimNext(claimOptions);
    expect(again?.run.attempt).toBe(2);
    expect(again?.order.feedback).toBe("not ok 1");
    const history = (await ledger.listTransitions(order!.id)).map(
      (t) => `${t.entity}:${t.from_status ?? "-"}>${t.to_status}`,
    );
    expect(history).toEqual([
      "order:->queued",
      "order:queued>running",
      "run:->running",
      "run:running>running",
      "run:running>rejected",
      "order:running>queued",
      "order:queued>running",
      "run:->running",
    ]);
    expect(await ledger.listGateResults(claim!.run.id)).toHaveLength(1);
  });

  it("will not let a run be finished twice", async () => {
    await ledger.addOrders([{ title: "once" }]);
    const claim = await ledger.claimNext(claimOptions);
    const landed = {
      outcome: "landed" as const,
      reason: "ok",
      previousMain: "a".repeat(40),
      landedCommit: "d".repeat(40),
    };
    await ledger.finishRun(claim!.run.id, landed);
    const twice = ledger.finishRun(claim!.run.id, landed);
    await expect(twice).rejects.toSatisfy(isNightshiftError);
    expect(await ledger.listMerges()).toHaveLength(1);
  });

  it("takes back runs whose worker died: requeued, or landed if main already has the commit", async () => {
    await ledger.addOrders([{ title: "in flight" }, { title: "mid-merge" }]);
    const inFlight = await ledger.claimNext({ ...claimOptions, leaseMs: -1 });
    const midMerge = await ledger.claimNext({ ...claimOptions, leaseMs: -1 });
    await ledger.setRunFacts(midMerge!.run.id, {
      base_commit: "a".repeat(40),
      merge_commit: "e".repeat(40),
    });
    const recovered = await ledger.recoverRuns({
      all: false,
      hasLanded: async (commit) => commit === "e".repeat(40),
    });
    expect(recovered.map((r) => [r.run.order_id, r.outcome])).toEqual([
      [inFlight!.order.id, "requeued"],
      [midMerge!.order.id, "landed"],
    ]);
    const orders = await ledger.listOrders();
    expect(orders.map((o) => [o.status, o.attempts])).toEqual([
      ["queued", 0],
      ["landed", 1],
    ]);
    expect((await ledger.listRuns()).map((r) => r.status)).toEqual(["abandoned", "landed"]);
  });

  it("leaves runs with a live lease alone unless told the worker is gone", async () => {
    await ledger.addOrders([{ title: "live" }]);
    const claim = await ledger.claimNext(claimOptions);
    expect(await ledger.recoverRuns({ all: false, hasLanded: async () => false })).toEqual([]);
    expect(await ledger.heartbeat(claim!.run.id, "w1", 60_000)).toBe(true);
    expect(await ledger.heartbeat(claim!.run.id, "someone else", 60_000)).toBe(false);
    const recovered = await ledger.recoverRuns({ all: true, hasLanded: async () => false });
    expect(recovered).toHaveLength(1);
    expect(await ledger.heartbeat(claim!.run.id, "w1", 60_000)).toBe(false);
  });

  it("keeps run events in order, and meters each model request once into its run and the totals", async () => {
    await ledger.addOrders([{ title: "usage" }]);
    const claim = await ledger.claimNext(claimOptions);
    const runId = claim!.run.id;
    await ledger.appendEvents(runId, [
      { kind: "message", payload: { text: "hi" } },
      { kind: "tool_call", payload: { name: "list_files" } },
    ]);
    await ledger.appendEvents(runId, [{ kind: "done", payload: { reason: "completed" } }]);
    const metered = (requestId: string, input: number, output: number, cost: number) => ({
      request_id: requestId,
      run_id: runId,
      order_id: claim!.order.id,
      protocol: "openai-chat",
      model: "sim-demo",
      status: 200,
      stream: false,
      input_tokens: input,
      output_tokens: output,
      cached_input_tokens: 0,
      cost_usd: cost,
      usage_estimated: false,
      latency_ms: 3,
      attempts: 1,
      error: null,
    });
    await ledger.recordModelRequests([metered("a", 100, 20, 0.5), metered("b", 50, 5, 0.25)]);
    // A batch retried after an unknown outcome is not counted twice.
    await ledger.recordModelRequests([metered("b", 50, 5, 0.25)]);
    expect(await ledger.spend({ runId })).toEqual({ costUsd: 0.75, tokens: 175, requests: 2 });
    const events = await ledger.listEvents(runId);
    expect(events.map((e) => [e.seq, e.kind])).toEqual([
      [1, "message"],
      [2, "tool_call"],
      [3, "done"],
    ]);
    expect(events[1]?.payload).toEqual({ name: "list_files" });
    const totals = await ledger.totals();
    expect(totals).toMatchObject({ runs: 1, inputTokens: 150, outputTokens: 25, costUsd: 0.75 });
    expect(totals.orders.running).toBe(1);
  });
});
