import OpenAI from "openai";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BudgetLimits, bundledPrices, Gateway } from "../../src/gateway/index.ts";
import { type Ledger, type LedgerLocation, openLedger } from "../../src/ledger/index.ts";
import { type FakeProvider, startFakeOpenAI } from "../support/fake-providers.ts";
import { ledgerBackends, openTestLedger } from "../support/ledgers.ts";

const MODEL = "gpt-5.6-luna";
/** More than two bursts can spend (200 x ~190 tokens each), so the restart and the reissue matter. */
const LIMIT = 100_000;
const BURST = 200;
/** About 150 tokens of output: under the requests' max_tokens of 200, as a real provider keeps it. */
const REPLY = "The quick brown fox jumps over the lazy dog. ".repeat(13);

describe.each(ledgerBackends)("run budgets in the ledger on $name", ({ location }) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  let fake: FakeProvider;
  const gateways: Gateway[] = [];
  const extraLedgers: Ledger[] = [];
  let runId: number;
  let orderId: number;
  let loc: LedgerLocation;

  beforeEach(async () => {
    loc = location();
    ({ ledger, dispose } = await openTestLedger(loc));
    // The fake bills the prompt as the whole JSON body / 4: more than the chars/4 the gateway
    // used to reserve, as real providers bill more than that estimate.
    fake = await startFakeOpenAI({ apiKey: "provider-key", script: () => ({ text: REPLY }) });
    await ledger.addOrders([{ title: "budgeted" }]);
    const claim = await ledger.claimNext({
      workerId: "w",
      leaseMs: 60_000,
      agent: "t",
      model: MODEL,
    });
    runId = claim!.run.id;
    orderId = claim!.order.id;
  });

  afterEach(async () => {
    for (const gateway of gateways.splice(0)) await gateway.close().catch(() => undefined);
    for (const extra of extraLedgers.splice(0)) await extra.close();
    await fake.close();
    await dispose();
  });

  async function startGateway(on: Ledger, limits: BudgetLimits = { runTokens: LIMIT }) {
    const gateway = new Gateway({
      ledger: on,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits,
      upstreams: {
        "openai-chat": {
          baseURL: fake.url.replace(/\/v1$/, ""),
          apiKey: "provider-key",
          auth: "bearer",
        },
      },
      // As shipped, so that a keep-alive socket the fake closed while the gateway restarted is
      // retried rather than failing the request.
      retry: { attempts: 3, baseDelayMs: 10 },
      // As shipped: the embedded ledger is one process's alone; PostgreSQL may be shared.
      exclusiveLedger: loc.kind !== "postgres",
    });
    await gateway.listen();
    gateways.push(gateway);
    return gateway;
  }

  async function burst(gateway: Gateway, apiKey: string, count = BURST) {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        client.chat.completions.create({
          model: MODEL,
          max_completion_tokens: 200,
          messages: [{ role: "user", content: `request ${i}: summarise the design in a line` }],
        }),
      ),
    );
    for (const r of results) {
      if (r.status === "rejected") expect(r.reason).toMatchObject({ status: 403 });
    }
    return results.filter((r) => r.status === "fulfilled").length;
  }

  it("200 concurrent requests, a restart and a key reissue: overrun at most one request", async () => {
    let gateway = await startGateway(ledger);
    let access = await gateway.openRun({ runId, orderId });
    const admitted: number[] = [];
    for (let round = 0; round < 20; round++) {
      admitted.push(await burst(gateway, access.apiKey));
      if (admitted.at(-1) === 0) break;
      if (round % 2 === 0) {
        // A restart: a new gateway on the same ledger starts from the ledger's spend, not zero.
        await gateway.close();
        gateways.splice(gateways.indexOf(gateway), 1);
        gateway = await startGateway(ledger);
        access = await gateway.openRun({ runId, orderId });
      } else {
        // The run's key revoked and reissued: its spend stays.
        await gateway.closeRun(runId);
        access = await gateway.openRun({ runId, orderId });
      }
    }
    expect(admitted.at(-1)).toBe(0);
    expect(admitted.length).toBeGreaterThan(3);
    await gateway.closeRun(runId);
    const rows = (await ledger.metering.listModelRequests(runId)).filter((r) => r.status === 200);
    const spent = rows.reduce((s, r) => s + r.input_tokens + r.output_tokens, 0);
    const largest = Math.max(...rows.map((r) => r.input_tokens + r.output_tokens));
    // Metering exact: the ledger holds what the provider billed.
    expect(rows.length).toBe(fake.reported.requests);
    expect(spent).toBe(fake.reported.inputTokens + fake.reported.outputTokens);
    expect(spent).toBeLessThanOrEqual(LIMIT + largest);
    // And the budget is used, not refused while most of it is unspent.
    expect(spent).toBeGreaterThan(LIMIT / 2);
    const refused = (await ledger.metering.listModelRequests(runId)).find((r) => r.status === 403);
    expect(refused?.error).toMatch(/\[budget\] max_tokens_per_run/);
  });

  it("two gateways sharing the ledger enforce one budget between them", async (context) => {
    if (loc.kind !== "postgres") {
      // The embedded ledger belongs to one process; several gateways need PostgreSQL.
      context.skip();
      return;
    }
    const other = await openLedger(loc, "test");
    extraLedgers.push(other);
    const a = await startGateway(ledger);
    const b = await startGateway(other);
    const keyA = (await a.openRun({ runId, orderId })).apiKey;
    for (let round = 0; round < 20; round++) {
      // The same run's key, issued on b too (a worker may reach either gateway).
      const keyB = (await b.openRun({ runId, orderId })).apiKey;
      const [fromA, fromB] = await Promise.all([burst(a, keyA, 100), burst(b, keyB, 100)]);
      if (fromA + fromB === 0) break;
    }
    await a.closeRun(runId);
    await b.closeRun(runId);
    const rows = (await ledger.metering.listModelRequests(runId)).filter((r) => r.status === 200);
    const spent = rows.reduce((s, r) => s + r.input_tokens + r.output_tokens, 0);
    const largest = Math.max(...rows.map((r) => r.input_tokens + r.output_tokens));
    expect(spent).toBe(fake.reported.inputTokens + fake.reported.outputTokens);
    expect(spent).toBeLessThanOrEqual(LIMIT + largest);
    expect(spent).toBeGreaterThan(LIMIT / 2);
  });
});

describe("budget refusals", () => {
  let ledger: Ledger;
  let fake: FakeProvider;
  let gateway: Gateway;

  afterEach(async () => {
    await gateway.close();
    await fake.close();
    await ledger.close();
  });

  it("name the budget that ran out and the setting to raise", async () => {
    ledger = await openLedger({ kind: "memory" });
    fake = await startFakeOpenAI({ apiKey: "k", script: () => ({ text: "ok" }) });
    gateway = new Gateway({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: { runTokens: 1_000 },
      upstreams: {
        "openai-chat": { baseURL: fake.url.replace(/\/v1$/, ""), apiKey: "k", auth: "bearer" },
      },
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
    const client = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    const attempt = client.chat.completions.create({
      model: MODEL,
      max_completion_tokens: 5_000,
      messages: [{ role: "user", content: "hi" }],
    });
    await expect(attempt).rejects.toMatchObject({ status: 403, code: "budget_exceeded" });
    await expect(attempt).rejects.toThrow(
      /run \d+ has spent 0 tokens of its 1000 tokens budget \(\[budget\] max_tokens_per_run in nightshift.toml\).*raise \[budget\] max_tokens_per_run/,
    );
    const { refusal } = await gateway.closeRun(claim!.run.id);
    expect(refusal).toMatchObject({ scope: "run", setting: "[budget] max_tokens_per_run" });
    expect(fake.requests).toHaveLength(0);
  });
});
