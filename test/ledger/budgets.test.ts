import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BudgetHold, Ledger, NewModelRequest } from "../../src/ledger/index.ts";
import { ledgerBackends, openTestLedger } from "../support/ledgers.ts";

const claimOptions = { workerId: "w1", leaseMs: 60_000, agent: "builtin", model: "sim" };
const DAY = "2030-01-02";

describe.each(ledgerBackends)("budgets and metering in the ledger on $name", ({ location }) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  let runId: number;
  let orderId: number;

  beforeEach(async () => {
    ({ ledger, dispose } = await openTestLedger(location()));
    await ledger.addOrders([{ title: "o" }]);
    const claim = await ledger.claimNext(claimOptions);
    runId = claim!.run.id;
    orderId = claim!.order.id;
  });
  afterEach(async () => {
    await dispose();
  });

  const hold = (requestId: string, tokens: number, limit: number, ttlMs = 60_000): BudgetHold => ({
    requestId,
    accounts: [{ key: `run:${runId}`, tokens: limit }],
    tokens,
    usd: tokens / 1000,
    day: DAY,
    ttlMs,
  });
  const row = (requestId: string, tokens: number, run = runId): NewModelRequest => ({
    request_id: requestId,
    run_id: run,
    order_id: orderId,
    protocol: "openai-chat",
    model: "m",
    status: 200,
    stream: false,
    input_tokens: tokens - 1,
    output_tokens: 1,
    cached_input_tokens: 0,
    cost_usd: tokens / 1000,
    usage_estimated: false,
    latency_ms: 1,
    attempts: 1,
    error: null,
  });

  it("admits requests in order only while spent + reserved + their own amount fit the limit", async () => {
    const verdicts = await ledger.budgets.reserveBudgets([
      hold("a", 40, 100),
      hold("b", 40, 100),
      hold("c", 40, 100),
      hold("d", 20, 100),
    ]);
    expect(verdicts.map((v) => v.admitted)).toEqual([true, true, false, true]);
    expect(verdicts[2]).toMatchObject({
      key: `run:${runId}`,
      unit: "tokens",
      spent: 0,
      reserved: 80,
      limit: 100,
      requested: 40,
    });
    const [account] = [...(await ledger.budgets.budgetAccounts([`run:${runId}`])).values()];
    expect(account).toMatchObject({ spentTokens: 0, reservedTokens: 100 });
  });

  it("turns a reservation into spend when its row is metered, on run, order, day and total", async () => {
    await ledger.budgets.reserveBudgets([hold("a", 40, 100)]);
    await ledger.metering.recordModelRequests([row("a", 25)]);
    // Retried batch: counted once.
    await ledger.metering.recordModelRequests([row("a", 25)]);
    const accounts = await ledger.budgets.budgetAccounts([
      `run:${runId}`,
      `order:${orderId}`,
      `day:${DAY}`,
      "total",
    ]);
    for (const account of accounts.values()) {
      expect(account).toMatchObject({ spentTokens: 25, reservedTokens: 0, reservedUsd: 0 });
      expect(account.spentUsd).toBeCloseTo(0.025, 10);
    }
    const verdicts = await ledger.budgets.reserveBudgets([hold("b", 80, 100)]);
    expect(verdicts[0]).toMatchObject({ admitted: false, spent: 25 });
  });

  it("serialises reservations from concurrent callers: never more admitted than the limit holds", async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => ledger.budgets.reserveBudgets([hold(`r${i}`, 10, 95)])),
    );
    expect(results.filter(([v]) => v?.admitted).length).toBe(9);
  });

  it("releases reservations that expire unmetered", async () => {
    await ledger.budgets.reserveBudgets([hold("gone", 90, 100, 1)]);
    expect((await ledger.budgets.reserveBudgets([hold("next", 20, 100)]))[0]?.admitted).toBe(false);
    expect(await ledger.budgets.releaseExpiredReservations(new Date(Date.now() + 10_000))).toBe(1);
    expect((await ledger.budgets.reserveBudgets([hold("next", 20, 100)]))[0]?.admitted).toBe(true);
  });

  it("keeps a row it cannot write as a dead letter with the reason, and releases its reservation", async () => {
    await ledger.budgets.reserveBudgets([hold("bad", 90, 100)]);
    await expect(ledger.metering.recordModelRequests([row("bad", 5, 999_999)])).rejects.toThrow();
    await ledger.metering.deadLetterModelRequest(
      row("bad", 5, 999_999),
      "run 999999 is not in the ledger",
    );
    const letters = await ledger.metering.listDeadLetters();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      request_id: "bad",
      reason: "run 999999 is not in the ledger",
    });
    expect(letters[0]!.row).toMatchObject({ run_id: 999_999 });
    const [account] = [...(await ledger.budgets.budgetAccounts([`run:${runId}`])).values()];
    expect(account).toMatchObject({ reservedTokens: 0 });
  });

  it("finds a run by id, and nothing for an id it does not have", async () => {
    expect((await ledger.getRun(runId))?.order_id).toBe(orderId);
    expect(await ledger.getRun(987_654)).toBeUndefined();
  });
});
