import { describe, expect, it } from "vitest";
import { isNightshiftError } from "../../src/errors/index.ts";
import type { Ledger } from "../../src/ledger/index.ts";
import { freshLedgerEachTest, ledgerBackends } from "../support/ledgers.ts";

const claimOptions = { workerId: "w1", leaseMs: 60_000, agent: "builtin", model: "sim" };

async function refused(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isNightshiftError(error)) throw new Error(`expected a NightshiftError, got ${error}`);
  return error.code;
}

describe.each(ledgerBackends)("the console's controls on $name", ({ location }) => {
  let ledger: Ledger;
  freshLedgerEachTest(location, (opened) => {
    ledger = opened;
  });

  it("pauses and resumes the line in the ledger, recording who did it", async () => {
    expect((await ledger.line.state()).paused).toBe(false);
    const paused = await ledger.line.pause("console:alice", "lunch");
    expect(paused).toMatchObject({ paused: true, changed_by: "console:alice", reason: "lunch" });
    expect(paused.seen_at).toBeNull();
    await ledger.line.noticePaused();
    expect((await ledger.line.state()).seen_at).toBeInstanceOf(Date);
    await ledger.line.resume("cli:bob");
    expect((await ledger.line.state()).paused).toBe(false);
    const history = await ledger.controls.history();
    expect(history.map((c) => [c.action, c.actor, c.note])).toEqual([
      ["resume", "cli:bob", ""],
      ["pause", "console:alice", "lunch"],
    ]);
  });

  it("stops a running run: the run is abandoned, the order waits for a person, the attempt is not counted", async () => {
    const [order] = await ledger.addOrders([{ title: "a" }]);
    const claim = await ledger.claimNext(claimOptions);
    const { order: moved, run } = await ledger.controls.stopRun(
      claim!.run.id,
      "looping",
      "console:alice",
    );
    expect(run).toMatchObject({ status: "abandoned", phase: "done" });
    expect(run.outcome_reason).toBe("stopped by console:alice: looping");
    expect(moved).toMatchObject({ id: order!.id, status: "waiting", attempts: 0 });
    expect(await refused(ledger.controls.stopRun(claim!.run.id))).toBe("run_control_refused");
    expect(await refused(ledger.controls.stopRun(999))).toBe("run_not_found");
    // The worker holding the run loses it at its next heartbeat.
    expect(await ledger.heartbeat(claim!.run.id, "w1", 60_000)).toBe(false);
    const approved = await ledger.controls.apply("approve", order!.id, "", "console:alice");
    expect(approved.status).toBe("queued");
    const [approve, stop] = await ledger.controls.history();
    expect([approve?.action, stop?.action, stop?.run_id]).toEqual([
      "approve",
      "stop",
      claim!.run.id,
    ]);
  });

  it("raises priority and edits an order's budget, and refuses to change an ended order", async () => {
    const [low, high] = await ledger.addOrders([{ title: "low" }, { title: "high" }]);
    const raised = await ledger.controls.amend(low!.id, { priority: 5 }, "", "console:alice");
    expect(raised.priority).toBe(5);
    expect((await ledger.claimNext(claimOptions))?.order.id).toBe(low!.id);
    const budgeted = await ledger.controls.amend(
      high!.id,
      { budgetTokens: 5000 },
      "tight",
      "cli:bob",
    );
    expect(budgeted.budget_tokens).toBe(5000);
    await ledger.controls.apply("cancel", high!.id);
    expect(await refused(ledger.controls.amend(high!.id, { priority: 1 }))).toBe(
      "order_control_refused",
    );
    const history = await ledger.controls.history();
    expect(history.map((c) => [c.action, c.actor, c.details])).toEqual([
      ["cancel", "a person", {}],
      ["budget", "cli:bob", { budgetTokens: [null, 5000] }],
      ["priority", "console:alice", { priority: [0, 5] }],
    ]);
  });
});
