import { describe, expect, it } from "vitest";
import { isNightshiftError } from "../../src/errors/index.ts";
import {
  BUDGET_LIMIT_NAMES,
  budgetLimitName,
  type Ledger,
  openLedger,
  parseBudgetLimitValue,
} from "../../src/ledger/index.ts";
import { freshLedgerEachTest, ledgerBackends } from "../support/ledgers.ts";

/** The error's code and message, for a call expected to throw a NightshiftError. */
async function failure(
  run: () => unknown,
): Promise<{ code: string; message: string; hint: string }> {
  const error = await Promise.resolve()
    .then(run)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  if (!isNightshiftError(error)) throw new Error(`expected a NightshiftError, got ${error}`);
  return { code: error.code, message: error.message, hint: error.hint ?? "" };
}

describe.each(ledgerBackends)("live budget limits on $name", ({ location }) => {
  let ledger: Ledger;
  freshLedgerEachTest(location, (opened) => {
    ledger = opened;
  });

  it("overrides nightshift.toml's limits until cleared, bumping the version and recording who did it", async () => {
    const toml = { max_tokens_per_run: 500_000, max_usd_per_day: 5 };
    const v0 = await ledger.budgetLimits.version();
    expect(
      (await ledger.budgetLimits.effective(toml)).map((l) => [l.name, l.value, l.source]),
    ).toEqual([
      ["max_tokens_per_run", 500_000, "nightshift.toml"],
      ["max_usd_per_run", null, "unset"],
      ["max_usd_per_order", null, "unset"],
      ["max_usd_per_day", 5, "nightshift.toml"],
      ["max_usd_total", null, "unset"],
    ]);

    const set = await ledger.budgetLimits.set("max_usd_per_day", 2.5, "console:alice", "slow down");
    expect(set).toMatchObject({ name: "max_usd_per_day", value: 2.5, setBy: "console:alice" });
    await ledger.budgetLimits.set("max_usd_total", 0, "cli:bob");
    await ledger.budgetLimits.set("max_usd_per_day", 3, "cli:bob");
    const v1 = await ledger.budgetLimits.version();
    expect(Number(v1)).toBe(Number(v0) + 3);

    const effective = await ledger.budgetLimits.effective(toml);
    expect(effective.find((l) => l.name === "max_usd_per_day")).toMatchObject({
      value: 3,
      source: "override",
      configured: 5,
      override: { value: 3, setBy: "cli:bob" },
    });
    expect(effective.find((l) => l.name === "max_usd_total")).toMatchObject({
      value: 0,
      source: "override",
      configured: null,
    });

    await ledger.budgetLimits.clear("max_usd_per_day", "console:alice", "back to normal");
    expect(
      (await ledger.budgetLimits.effective(toml)).find((l) => l.name === "max_usd_per_day"),
    ).toMatchObject({ value: 5, source: "nightshift.toml", override: null });
    expect(Number(await ledger.budgetLimits.version())).toBe(Number(v1) + 1);

    const history = await ledger.controls.history();
    expect(history.map((c) => [c.action, c.actor, c.note, c.details])).toEqual([
      [
        "budget-limit",
        "console:alice",
        "back to normal",
        { limit: "max_usd_per_day", from: 3, to: null, cleared: true },
      ],
      ["budget-limit", "cli:bob", "", { limit: "max_usd_per_day", from: 2.5, to: 3 }],
      ["budget-limit", "cli:bob", "", { limit: "max_usd_total", from: null, to: 0 }],
      [
        "budget-limit",
        "console:alice",
        "slow down",
        { limit: "max_usd_per_day", from: null, to: 2.5 },
      ],
    ]);
    expect(ledger.budgetLimits.changes).toBe(4);
  });

  it("shows the spend against each limit: today's, the total, and the most a running run and order spent", async () => {
    const [order] = await ledger.addOrders([{ title: "spender" }]);
    const claim = await ledger.claimNext({
      workerId: "w",
      leaseMs: 60_000,
      agent: "t",
      model: "m",
    });
    await ledger.metering.recordModelRequests([
      {
        request_id: "r1",
        run_id: claim!.run.id,
        order_id: order!.id,
        protocol: "openai-chat",
        model: "m",
        status: 200,
        stream: false,
        input_tokens: 100,
        output_tokens: 50,
        cached_input_tokens: 0,
        cost_usd: 0.25,
        usage_estimated: false,
        latency_ms: 5,
        attempts: 1,
        error: null,
      },
    ]);
    const standing = await ledger.budgetLimits.standing({ max_tokens_per_run: 1_000 });
    const by = Object.fromEntries(standing.map((s) => [s.name, s]));
    expect(by.max_tokens_per_run).toMatchObject({
      unit: "tokens",
      spent: 150,
      spentBy: `run ${claim!.run.id}`,
      value: 1_000,
    });
    expect(by.max_usd_per_run).toMatchObject({ unit: "usd", spent: 0.25, value: null });
    expect(by.max_usd_per_order).toMatchObject({ spent: 0.25, spentBy: `WO-${order!.id}` });
    expect(by.max_usd_per_day).toMatchObject({ spent: 0.25, spentBy: "today (UTC)" });
    expect(by.max_usd_total).toMatchObject({ spent: 0.25, spentBy: "in total" });
  });

  it("refuses bad limits with an error that says what to give, and changes nothing", async () => {
    const cases: [() => unknown, string, RegExp][] = [
      [
        () => ledger.budgetLimits.set("max_usd_per_week", 1, "t"),
        "budget_limit_unknown",
        /no budget limit "max_usd_per_week"/,
      ],
      [
        () => ledger.budgetLimits.set("max_usd_per_day", -1, "t"),
        "budget_limit_invalid",
        /max_usd_per_day = -1 is negative/,
      ],
      [
        () => ledger.budgetLimits.set("max_usd_per_day", Number.NaN, "t"),
        "budget_limit_invalid",
        /is not a number/,
      ],
      [
        () => ledger.budgetLimits.set("max_usd_total", Number.POSITIVE_INFINITY, "t"),
        "budget_limit_invalid",
        /is not a number/,
      ],
      [
        () => ledger.budgetLimits.set("max_tokens_per_run", 10.5, "t"),
        "budget_limit_invalid",
        /is not a whole number/,
      ],
      [
        () => ledger.budgetLimits.set("max_usd_per_run", 2e9, "t"),
        "budget_limit_invalid",
        /is more than 1000000000/,
      ],
      [
        () => ledger.budgetLimits.clear("max_usd_per_day", "t"),
        "budget_override_not_found",
        /no override to clear/,
      ],
      [() => ledger.budgetLimits.clear("nope", "t"), "budget_limit_unknown", /no budget limit/],
    ];
    for (const [run, code, message] of cases) {
      const error = await failure(run);
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
      expect(error.hint).toMatch(/nothing was changed/);
    }
    expect(await ledger.controls.history()).toEqual([]);
    expect((await ledger.budgetLimits.overrides()).overrides).toEqual({});
  });
});

describe("budget limits typed by a person", () => {
  it("reads names (with or without [budget]) and amounts, and refuses the rest", async () => {
    expect(budgetLimitName(" [budget] max_usd_total ")).toBe("max_usd_total");
    expect(BUDGET_LIMIT_NAMES).toContain("max_tokens_per_run");
    expect(parseBudgetLimitValue("max_usd_per_day", "$2.50")).toBe(2.5);
    expect(parseBudgetLimitValue("max_tokens_per_run", "200_000")).toBe(200_000);
    expect(parseBudgetLimitValue("max_usd_total", "0")).toBe(0);
    for (const [raw, message] of [
      ["five", /"five" is not a number/],
      ["", /is not a number/],
      ["1,5", /is not a number/],
      ["-3", /is negative/],
    ] as const) {
      const error = await failure(() => parseBudgetLimitValue("max_usd_per_day", raw));
      expect(error.code).toBe("budget_limit_invalid");
      expect(error.message).toMatch(message);
    }
    expect(
      (await failure(() => parseBudgetLimitValue("max_tokens_per_run", "1.5"))).message,
    ).toMatch(/not a whole number/);
  });

  it("keeps overrides in the ledger across a reopen of the embedded ledger", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = await mkdtemp(path.join(os.tmpdir(), "ns-limits-"));
    try {
      const first = await openLedger(
        { kind: "embedded", dataDir: path.join(dir, "ledger") },
        "test",
      );
      await first.budgetLimits.set("max_usd_total", 7, "cli:a");
      await first.close();
      const second = await openLedger(
        { kind: "embedded", dataDir: path.join(dir, "ledger") },
        "test",
      );
      expect((await second.budgetLimits.overrides()).overrides.max_usd_total?.value).toBe(7);
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
