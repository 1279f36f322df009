import { describe, expect, it } from "vitest";
import { isNightshiftError } from "../../src/errors/index.ts";
import type { Ledger } from "../../src/ledger/index.ts";
import { freshLedgerEachTest, ledgerBackends } from "../support/ledgers.ts";

const claimOptions = { workerId: "w1", leaseMs: 60_000, agent: "builtin", model: "sim" };
const SHA = "a".repeat(40);

async function refused(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isNightshiftError(error)) throw new Error(`expected a NightshiftError, got ${error}`);
  return { code: error.code, message: error.message };
}

describe.each(ledgerBackends)("acceptance and a person's controls on $name", ({ location }) => {
  let ledger: Ledger;
  freshLedgerEachTest(location, (opened) => {
    ledger = opened;
  });

  it("stores drafted scenarios and puts the order in waiting; approve activates them, and drafts are refused for a running order or one with scenarios", async () => {
    const [a, b] = await ledger.addOrders([
      { title: "a", acceptance: "x" },
      { title: "b", holdout: [{ name: "b.test.ts", content: "B" }] },
    ]);
    const stored = await ledger.acceptance.storeDrafts(a!.id, [
      { name: "a.test.ts", content: "A" },
    ]);
    expect(stored.order.status).toBe("waiting");
    expect(stored.scenarios.map((s) => [s.name, s.status, s.source])).toEqual([
      ["a.test.ts", "draft", "acceptance-writer"],
    ]);
    expect((await ledger.acceptance.scenariosFor(a!.id)).scenarios).toEqual([]);
    expect((await ledger.listTransitions()).at(-1)?.message).toMatch(
      /1 hidden scenario\(s\) drafted/,
    );
    // Drafting again replaces the earlier drafts.
    await ledger.acceptance.storeDrafts(a!.id, [{ name: "a2.test.ts", content: "A2" }]);
    expect((await ledger.acceptance.listScenarios(a!.id)).map((s) => s.name)).toEqual([
      "a2.test.ts",
    ]);
    await ledger.controls.apply("approve", a!.id);
    expect((await ledger.acceptance.scenariosFor(a!.id)).scenarios.map((s) => s.content)).toEqual([
      "A2",
    ]);
    expect(
      await refused(ledger.acceptance.storeDrafts(a!.id, [{ name: "c", content: "C" }])),
    ).toMatchObject({
      code: "acceptance_draft_refused",
    });
    expect(
      (await refused(ledger.acceptance.storeDrafts(b!.id, [{ name: "c", content: "C" }]))).message,
    ).toMatch(/already has 1 hidden scenario/);
    await ledger.claimNext(claimOptions);
    const running = (await ledger.listOrders()).find((o) => o.status === "running");
    expect(
      (await refused(ledger.acceptance.storeDrafts(running!.id, [{ name: "d", content: "D" }])))
        .message,
    ).toMatch(/it is running/);
  });

  it("stores an order's hidden scenarios with it, and hands a candidate its own and every landed order's", async () => {
    const [a, b, c] = await ledger.addOrders([
      { title: "a", key: "a", holdout: [{ name: "a.test.ts", content: "A" }] },
      { title: "b", holdout: [{ name: "b.test.ts", content: "B" }] },
      { title: "c" },
    ]);
    const forB = await ledger.acceptance.scenariosFor(b!.id);
    expect(forB.scenarios.map((s) => [s.order_id, s.name, s.content])).toEqual([
      [b!.id, "b.test.ts", "B"],
    ]);
    expect(forB.owners).toEqual([{ id: b!.id, key: null, landed: false }]);

    // a lands: its scenario now judges c's candidates and main itself.
    const claim = await ledger.claimNext(claimOptions);
    expect(claim?.order.id).toBe(a!.id);
    await ledger.finishRun(claim!.run.id, {
      outcome: "landed",
      reason: "ok",
      previousMain: SHA,
      landedCommit: "b".repeat(40),
    });
    const forC = await ledger.acceptance.scenariosFor(c!.id);
    expect(forC.scenarios.map((s) => s.name)).toEqual(["a.test.ts"]);
    expect(forC.owners).toEqual([
      { id: a!.id, key: "a", landed: true },
      { id: c!.id, key: null, landed: false },
    ]);
    expect((await ledger.acceptance.scenariosFor()).scenarios.map((s) => s.name)).toEqual([
      "a.test.ts",
    ]);
  });

  it("refuses two scenarios of one name for one order, adding nothing", async () => {
    await expect(
      ledger.addOrders([
        { title: "ok" },
        {
          title: "twice",
          holdout: [
            { name: "x.test.ts", content: "1" },
            { name: "x.test.ts", content: "2" },
          ],
        },
      ]),
    ).rejects.toThrow();
    expect(await ledger.listOrders()).toEqual([]);
  });

  it("keeps an order that needs approval waiting until a person approves it; drafts become active", async () => {
    const [order] = await ledger.addOrders([{ title: "generated", needsApproval: true }]);
    expect(order?.status).toBe("waiting");
    expect(await ledger.claimNext(claimOptions)).toBeNull();
    await ledger.db
      .insertInto("holdout_scenarios")
      .values({ order_id: order!.id, name: "drafted.test.ts", content: "D", status: "draft" })
      .execute();
    expect((await ledger.acceptance.scenariosFor(order!.id)).scenarios).toEqual([]);
    expect((await ledger.totals()).orders.waiting).toBe(1);

    const approved = await ledger.controls.apply("approve", order!.id, "looks right");
    expect(approved.status).toBe("queued");
    expect((await ledger.acceptance.scenariosFor(order!.id)).scenarios.map((s) => s.name)).toEqual([
      "drafted.test.ts",
    ]);
    const last = (await ledger.listTransitions(order!.id)).at(-1);
    expect([last?.from_status, last?.to_status, last?.message]).toEqual([
      "waiting",
      "queued",
      "approve by a person: looks right",
    ]);
    expect((await ledger.claimNext(claimOptions))?.order.id).toBe(order!.id);
  });

  it("rejecting a waiting order cancels it and its drafts", async () => {
    const [order] = await ledger.addOrders([{ title: "generated", needsApproval: true }]);
    await ledger.db
      .insertInto("holdout_scenarios")
      .values({ order_id: order!.id, name: "d.test.ts", content: "D", status: "draft" })
      .execute();
    const rejected = await ledger.controls.apply("reject", order!.id, "not what we want");
    expect(rejected.status).toBe("cancelled");
    expect(rejected.failure_reason).toBe("reject by a person: not what we want");
    expect((await ledger.acceptance.listScenarios(order!.id)).map((s) => s.status)).toEqual([
      "rejected",
    ]);
  });

  it("retries a failed order with fresh attempts and keeps its feedback", async () => {
    const [order] = await ledger.addOrders([{ title: "hard", maxAttempts: 1 }]);
    const claim = await ledger.claimNext(claimOptions);
    await ledger.finishRun(claim!.run.id, {
      outcome: "failed",
      runStatus: "rejected",
      reason: "test gate failed",
      feedback: "expected 4, got 3",
    });
    expect((await ledger.getOrder(order!.id))?.status).toBe("failed");

    const retried = await ledger.controls.apply("retry", order!.id);
    expect([retried.status, retried.attempts, retried.failure_reason, retried.feedback]).toEqual([
      "queued",
      0,
      null,
      "expected 4, got 3",
    ]);
    const again = await ledger.claimNext(claimOptions);
    expect(again?.run.attempt).toBe(1);
  });

  it("requeues a running order without counting its attempt, and cancels a running one", async () => {
    const [first, second] = await ledger.addOrders([{ title: "stuck" }, { title: "unwanted" }]);
    const stuck = await ledger.claimNext(claimOptions);
    const unwanted = await ledger.claimNext(claimOptions);

    const requeued = await ledger.controls.apply("requeue", first!.id);
    expect([requeued.status, requeued.attempts]).toEqual(["queued", 0]);
    const cancelled = await ledger.controls.apply("cancel", second!.id, "changed my mind");
    expect(cancelled.status).toBe("cancelled");
    const runs = await ledger.listRuns();
    expect(runs.map((r) => [r.id, r.status])).toEqual([
      [stuck!.run.id, "abandoned"],
      [unwanted!.run.id, "abandoned"],
    ]);
    // The worker that held the run finds out on its next heartbeat, and stops it.
    expect(await ledger.heartbeat(stuck!.run.id, "w1", 60_000)).toBe(false);
    // A late finisher cannot overwrite what the person decided.
    await expect(
      ledger.finishRun(unwanted!.run.id, {
        outcome: "retry",
        runStatus: "rejected",
        reason: "x",
        feedback: "y",
      }),
    ).rejects.toThrow(/no longer running/);
    expect((await ledger.getOrder(second!.id))?.status).toBe("cancelled");
  });

  it("refuses a control that does not fit the order's state, or an order that does not exist, changing nothing", async () => {
    const [order] = await ledger.addOrders([{ title: "queued one" }]);
    const before = await ledger.listTransitions();
    expect(await refused(ledger.controls.apply("retry", order!.id))).toEqual({
      code: "order_control_refused",
      message: `cannot retry WO-${order!.id}: it is queued; only a failed or cancelled order can be retried`,
    });
    expect((await refused(ledger.controls.apply("approve", order!.id))).code).toBe(
      "order_control_refused",
    );
    expect((await refused(ledger.controls.apply("cancel", 999))).code).toBe("order_not_found");
    expect(await ledger.listTransitions()).toEqual(before);
    expect((await ledger.getOrder(order!.id))?.status).toBe("queued");
  });

  it("closes a defect once, keeping when and why", async () => {
    const [order] = await ledger.addOrders([{ title: "x" }]);
    const defect = await ledger.raiseDefect({
      kind: "order_failed",
      orderId: order!.id,
      summary: "failed",
      evidence: {},
    });
    const closed = await ledger.controls.closeDefect(defect!.id, "flaky test, fixed on main");
    expect([closed.status, closed.close_note]).toEqual(["closed", "flaky test, fixed on main"]);
    expect(closed.closed_at).toBeInstanceOf(Date);
    expect(await ledger.listDefects({ status: "open" })).toEqual([]);
    expect((await refused(ledger.controls.closeDefect(defect!.id))).code).toBe(
      "defect_already_closed",
    );
    expect((await refused(ledger.controls.closeDefect(12345))).code).toBe("defect_not_found");
  });

  it("records checks of main, the latest first", async () => {
    expect(await ledger.acceptance.latestBaseline()).toBeUndefined();
    await ledger.acceptance.recordBaseline({ commit: SHA, tree: "t1", passed: true });
    await ledger.acceptance.recordBaseline({
      commit: "c".repeat(40),
      tree: "t2",
      passed: false,
      cause: "test gate failed: Cannot find module 'left-pad'",
    });
    const latest = await ledger.acceptance.latestBaseline();
    expect([latest?.tree_sha, latest?.passed, latest?.cause]).toEqual([
      "t2",
      false,
      "test gate failed: Cannot find module 'left-pad'",
    ]);
  });
});
