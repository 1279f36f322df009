import OpenAI from "openai";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bundledPrices, Gateway } from "../../src/gateway/index.ts";
import { type Ledger, type LedgerLocation, openLedger } from "../../src/ledger/index.ts";
import { type FakeProvider, startFakeOpenAI } from "../support/fake-providers.ts";
import { ledgerBackends, openTestLedger } from "../support/ledgers.ts";

const MODEL = "gpt-5.6-luna";

describe.each(ledgerBackends)("budget limits changed live on $name", ({ location }) => {
  let ledger: Ledger;
  /** Where a person changes the limits: another process on PostgreSQL, this one when embedded. */
  let person: Ledger;
  let dispose: () => Promise<void>;
  let fake: FakeProvider;
  let gateway: Gateway;
  let loc: LedgerLocation;
  let client: OpenAI;

  beforeEach(async () => {
    loc = location();
    ({ ledger, dispose } = await openTestLedger(loc));
    // With PostgreSQL the person's change comes through another connection pool, as from the CLI
    // or a console in another process; the embedded ledger is one process's alone.
    person = loc.kind === "postgres" ? await openLedger(loc, "person") : ledger;
    fake = await startFakeOpenAI({ apiKey: "k", script: () => ({ text: "ok" }) });
    gateway = new Gateway({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: { runTokens: 100_000 },
      upstreams: {
        "openai-chat": { baseURL: fake.url.replace(/\/v1$/, ""), apiKey: "k", auth: "bearer" },
      },
      exclusiveLedger: loc.kind !== "postgres",
    });
    await gateway.listen();
    const [order] = await ledger.addOrders([{ title: "o" }]);
    const claim = await ledger.claimNext({
      workerId: "w",
      leaseMs: 60_000,
      agent: "t",
      model: MODEL,
    });
    const access = await gateway.openRun({ runId: claim!.run.id, orderId: order!.id });
    client = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
  });

  afterEach(async () => {
    await gateway.close();
    if (person !== ledger) await person.close();
    await fake.close();
    await dispose();
  });

  const ask = () =>
    client.chat.completions.create({
      model: MODEL,
      max_completion_tokens: 200,
      messages: [{ role: "user", content: "hi" }],
    });

  it("a limit lowered in the ledger refuses the next request, naming the override; cleared, nightshift.toml's applies again", async () => {
    await expect(ask()).resolves.toMatchObject({ object: "chat.completion" });

    await person.budgetLimits.set("max_tokens_per_run", 50, "cli:carol", "too chatty");
    const refused = ask();
    await expect(refused).rejects.toMatchObject({ status: 403, code: "budget_exceeded" });
    await expect(refused).rejects.toThrow(
      /of its 50 tokens budget \(the override of \[budget\] max_tokens_per_run, set by cli:carol at .*nightshift.toml says 100000 tokens\).*nightshift budget clear max_tokens_per_run/,
    );
    expect(fake.requests).toHaveLength(1);

    await person.budgetLimits.clear("max_tokens_per_run", "cli:carol");
    await expect(ask()).resolves.toMatchObject({ object: "chat.completion" });
    expect(fake.requests).toHaveLength(2);
  });

  it("a limit nightshift.toml does not set can be added live, and refuses at once", async () => {
    await person.budgetLimits.set("max_usd_per_day", 0, "console:dan");
    const refused = ask();
    await expect(refused).rejects.toMatchObject({ status: 403 });
    await expect(refused).rejects.toThrow(
      /the factory today \(UTC\) has spent \$0\.0000 of its \$0\.0000 budget \(the override of \[budget\] max_usd_per_day, set by console:dan .*nightshift.toml sets none\)/,
    );
    const { refusal } = await gateway.closeRun((await ledger.listRuns())[0]!.id);
    expect(refusal).toMatchObject({ scope: "day", source: "override" });
    expect(fake.requests).toHaveLength(0);
  });
});
