import OpenAI from "openai";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BudgetLimits, bundledPrices, Gateway } from "../../src/gateway/index.ts";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import {
  type Policy,
  type RunningSimulator,
  type SimulatorFaults,
  startSimulator,
} from "../../src/sim/index.ts";

let ledger: Ledger;
let sim: RunningSimulator;
let gateway: Gateway;

/** Replies with text whose length depends on the prompt, so usage varies from request to request. */
const echoPolicy: Policy = (request) => {
  const last = request.messages.at(-1);
  const text = typeof last?.content === "string" ? last.content : "";
  return { content: `echo ${text} ${"x".repeat(text.length % 97)}` };
};

async function start(
  options: {
    policy?: Policy;
    limits?: BudgetLimits;
    retries?: number;
    faults?: SimulatorFaults;
    idleMs?: number;
    exclusive?: boolean;
  } = {},
) {
  ledger = await openLedger({ kind: "memory" });
  sim = await startSimulator({
    policy: options.policy ?? echoPolicy,
    ...(options.faults ? { faults: options.faults } : {}),
  });
  gateway = new Gateway({
    ledger,
    logger: pino({ level: "silent" }),
    prices: bundledPrices,
    limits: options.limits ?? {},
    upstreams: {
      "openai-chat": {
        baseURL: sim.url.replace(/\/v1$/, ""),
        apiKey: "provider-secret",
        auth: "bearer",
      },
    },
    retry: { attempts: options.retries ?? 3, baseDelayMs: 10 },
    streamIdleTimeoutMs: options.idleMs ?? 120_000,
    ...(options.exclusive ? { exclusiveLedger: true } : {}),
  });
  await gateway.listen();
}

/** Runs need rows in the ledger; each gets a scoped key and a client holding only that key. */
async function openRuns(count: number) {
  await ledger.addOrders(Array.from({ length: count }, (_, i) => ({ title: `order ${i}` })));
  const runs = [];
  for (let i = 0; i < count; i++) {
    const claim = await ledger.claimNext({
      workerId: "w",
      leaseMs: 60_000,
      agent: "test",
      model: "sim-demo",
    });
    const access = await gateway.openRun({ runId: claim!.run.id, orderId: claim!.order.id });
    runs.push({
      ...claim!,
      access,
      client: new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 }),
    });
  }
  return runs;
}

afterEach(async () => {
  await gateway?.close();
  await sim?.close();
  await ledger?.close();
});

describe("the gateway", () => {
  beforeEach(async () => {
    await start();
  });

  it("refuses requests without a key, with a wrong key and with a revoked key, in OpenAI's error shape", async () => {
    const [run] = await openRuns(1);
    const post = (key?: string) =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(key ? { authorization: `Bearer ${key}` } : {}),
        },
        body: JSON.stringify({ model: "sim-demo", messages: [{ role: "user", content: "hi" }] }),
      });
    const missing = await post();
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({
      error: { type: "authentication_error", code: "invalid_api_key" },
    });
    expect((await post("nsk-run1-forged")).status).toBe(401);
    expect((await post(run!.access.apiKey)).status).toBe(200);
    await gateway.closeRun(run!.run.id);
    const revoked = await post(run!.access.apiKey);
    expect(revoked.status).toBe(401);
    expect((await revoked.json()).error.message).toMatch(/run has ended/);
    expect(sim.stats.requests).toBe(1);
  });

  it("hands each run a key that names it, and never the provider's key", async () => {
    const [run] = await openRuns(1);
    expect(run!.access.apiKey).toMatch(new RegExp(`^nsk-run${run!.run.id}-`));
    expect(run!.access.apiKey).not.toContain("provider-secret");
  });

  it("meters every request exactly once: the ledger's sums equal the simulator's own count", async () => {
    const runs = await openRuns(5);
    const perRun = 12;
    await Promise.all(
      runs.map(async (run, r) => {
        for (let i = 0; i < perRun; i++) {
          const content = `run ${r} request ${i} ${"word ".repeat((r * 7 + i * 13) % 40)}`;
          if (i % 2 === 0) {
            await run.client.chat.completions.create({
              model: "sim-demo",
              messages: [{ role: "user", content }],
            });
          } else {
            const stream = await run.client.chat.completions.create({
              model: "sim-demo",
              messages: [{ role: "user", content }],
              stream: true,
            });
            for await (const _ of stream) {
              // drain
            }
          }
        }
      }),
    );
    for (const run of runs) await gateway.closeRun(run.run.id);
    const rows = await ledger.metering.listModelRequests();
    expect(rows).toHaveLength(runs.length * perRun);
    expect(new Set(rows.map((r) => r.request_id)).size).toBe(rows.length);
    expect(rows.every((r) => r.status === 200 && !r.usage_estimated)).toBe(true);
    const sum = (key: "input_tokens" | "output_tokens") => rows.reduce((s, r) => s + r[key], 0);
    expect(sum("input_tokens")).toBe(sim.stats.promptTokens);
    expect(sum("output_tokens")).toBe(sim.stats.completionTokens);
    const totals = await ledger.totals();
    expect(totals.inputTokens).toBe(sim.stats.promptTokens);
    expect(totals.outputTokens).toBe(sim.stats.completionTokens);
    for (const run of runs) {
      const own = rows.filter((r) => r.run_id === run.run.id);
      expect(own).toHaveLength(perRun);
      const [ledgerRun] = await ledger.listRuns(run.order.id);
      expect(ledgerRun!.input_tokens).toBe(own.reduce((s, r) => s + r.input_tokens, 0));
      expect(ledgerRun!.cost_usd).toBeCloseTo(
        own.reduce((s, r) => s + r.cost_usd, 0),
        10,
      );
    }
  });

  it("rejects a bad body with a clear 400 and forwards nothing", async () => {
    const [run] = await openRuns(1);
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${run!.access.apiKey}`,
      },
      body: JSON.stringify({ model: "sim-demo", messages: [{ role: "wizard", content: "hi" }] }),
    });
    expect(response.status).toBe(400);
    expect((await response.json()).error.message).toMatch(/messages\[0\]/);
    const garbage = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${run!.access.apiKey}` },
      body: "{not json",
    });
    expect(garbage.status).toBe(400);
    expect(sim.stats.requests).toBe(0);
  });

  it("refuses a model it has no price for, naming the model and the fix", async () => {
    const [run] = await openRuns(1);
    const attempt = run!.client.chat.completions.create({
      model: "mystery-model",
      messages: [{ role: "user", content: "hi" }],
    });
    await expect(attempt).rejects.toMatchObject({ status: 400 });
    await expect(attempt).rejects.toThrow(
      /no price is known for model "mystery-model".*price table/,
    );
  });

  it("keeps each run's transcript", async () => {
    await gateway.close();
    await sim.close();
    await ledger.close();
    ledger = await openLedger({ kind: "memory" });
    sim = await startSimulator({ policy: echoPolicy });
    const dir = `${process.env.TMPDIR ?? "/tmp"}/nightshift-transcripts-${process.pid}-${Date.now()}`;
    gateway = new Gateway({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: {},
      upstreams: {
        "openai-chat": { baseURL: sim.url.replace(/\/v1$/, ""), apiKey: "k", auth: "bearer" },
      },
      transcriptsDir: dir,
    });
    await gateway.listen();
    const [run] = await openRuns(1);
    await run!.client.chat.completions.create({
      model: "sim-demo",
      messages: [{ role: "user", content: "remember me" }],
    });
    const entries = await gateway.transcripts!.read(run!.run.id);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.request).toContain("remember me");
    expect(entries[0]!.response).toContain("echo remember me");
  });
});

describe("budgets", () => {
  it("stop a run's spending at its budget, within one request, and say why", async () => {
    await start({ limits: { runUsd: 0.002 } });
    const [run] = await openRuns(1);
    let refused: unknown;
    for (let i = 0; i < 200 && !refused; i++) {
      await run!.client.chat.completions
        .create({
          model: "sim-demo",
          max_tokens: 50,
          messages: [{ role: "user", content: `request ${i} ${"pad ".repeat(20)}` }],
        })
        .catch((error: unknown) => {
          refused = error;
        });
    }
    expect(refused).toMatchObject({ status: 403, code: "budget_exceeded" });
    expect(String((refused as Error).message)).toMatch(
      /budget exhausted: run \d+ has spent \$0\.00\d+/,
    );
    const { refusal } = await gateway.closeRun(run!.run.id);
    expect(refusal?.scope).toBe("run");
    const rows = await ledger.metering.listModelRequests(run!.run.id);
    const spent = rows.reduce((s, r) => s + r.cost_usd, 0);
    const largest = Math.max(...rows.map((r) => r.cost_usd));
    expect(spent).toBeLessThanOrEqual(0.002);
    expect(spent).toBeGreaterThan(0.002 - largest * 2);
    expect(rows.at(-1)?.status).toBe(403);
  });

  it("hold when many requests race: reservations keep the total within the budget", async () => {
    await start({ limits: { orderUsd: 0.003 } });
    const [run] = await openRuns(1);
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        run!.client.chat.completions.create({
          model: "sim-demo",
          max_tokens: 40,
          messages: [{ role: "user", content: `racing request ${i}` }],
        }),
      ),
    );
    const accepted = results.filter((r) => r.status === "fulfilled").length;
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(60);
    await gateway.closeRun(run!.run.id);
    const spent = await ledger.metering.spend({ orderId: run!.order.id });
    expect(spent.costUsd).toBeLessThanOrEqual(0.003);
    expect(sim.stats.requests).toBe(accepted);
  });

  it("count spend recorded before a restart", async () => {
    await start({ limits: { totalUsd: 0.001 } });
    const [run] = await openRuns(1);
    for (let i = 0; i < 3; i++) {
      await run!.client.chat.completions.create({
        model: "sim-demo",
        max_tokens: 20,
        messages: [{ role: "user", content: "hello" }],
      });
    }
    await gateway.closeRun(run!.run.id);
    const spentBefore = (await ledger.metering.spend({})).costUsd;
    // A new gateway on the same ledger, with a total budget just above what was spent.
    await gateway.close();
    gateway = new Gateway({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: { totalUsd: spentBefore + 0.00001 },
      upstreams: {
        "openai-chat": { baseURL: sim.url.replace(/\/v1$/, ""), apiKey: "k", auth: "bearer" },
      },
    });
    await gateway.listen();
    const access = await gateway.openRun({ runId: run!.run.id, orderId: run!.order.id });
    const client = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    await expect(
      client.chat.completions.create({
        model: "sim-demo",
        max_tokens: 20,
        messages: [{ role: "user", content: "hello" }],
      }),
    ).rejects.toMatchObject({ status: 403 });
  });
});

describe("failing closed and upstream trouble", () => {
  it("refuses to forward when spend cannot be recorded", async () => {
    // Exclusive, as the embedded ledger runs: reserving needs no ledger read, so the request after
    // the ledger went away is forwarded and it is the meter that must fail closed. (A shared
    // gateway reads the limits' version from the ledger per batch, and refuses even sooner.)
    await start({ exclusive: true });
    const [run] = await openRuns(1);
    await run!.client.chat.completions.create({
      model: "sim-demo",
      messages: [{ role: "user", content: "ok" }],
    });
    await gateway.meter.flush();
    // The ledger goes away: the next metered write fails, and from then on nothing is forwarded.
    await ledger.close();
    await run!.client.chat.completions.create({
      model: "sim-demo",
      messages: [{ role: "user", content: "unrecorded" }],
    });
    await expect(gateway.meter.flush()).rejects.toThrow();
    const before = sim.stats.requests;
    const refused = run!.client.chat.completions.create({
      model: "sim-demo",
      messages: [{ role: "user", content: "x" }],
    });
    await expect(refused).rejects.toMatchObject({ status: 503 });
    await expect(refused).rejects.toThrow(/fail closed/);
    expect(sim.stats.requests).toBe(before);
    // Shutting down with spend still unrecorded is an error, never silent.
    await expect(gateway.close()).rejects.toMatchObject({ code: "metering_lost" });
    gateway = undefined as unknown as Gateway;
    ledger = await openLedger({ kind: "memory" });
  });

  it("retries upstream server errors, then passes the error on", async () => {
    let calls = 0;
    await start({
      retries: 3,
      policy: () => {
        calls++;
        throw new Error("upstream is on fire");
      },
    });
    const [run] = await openRuns(1);
    const attempt = run!.client.chat.completions.create({
      model: "sim-demo",
      messages: [{ role: "user", content: "x" }],
    });
    await expect(attempt).rejects.toMatchObject({ status: 500 });
    expect(calls).toBe(3);
    await gateway.closeRun(run!.run.id);
    const [row] = await ledger.metering.listModelRequests(run!.run.id);
    expect(row).toMatchObject({ status: 500, attempts: 3, input_tokens: 0, cost_usd: 0 });
    expect(row!.error).toContain("upstream is on fire");
  });

  it("recovers from a transient upstream failure without the client noticing", async () => {
    let calls = 0;
    await start({
      policy: () => {
        calls++;
        if (calls === 1) throw new Error("blip");
        return { content: "fine" };
      },
    });
    const [run] = await openRuns(1);
    const reply = await run!.client.chat.completions.create({
      model: "sim-demo",
      messages: [{ role: "user", content: "x" }],
    });
    expect(reply.choices[0]?.message.content).toBe("fine");
    await gateway.closeRun(run!.run.id);
    const [row] = await ledger.metering.listModelRequests(run!.run.id);
    expect(row).toMatchObject({ status: 200, attempts: 2 });
  });

  it("cuts off a stream that stalls, and still meters it once, as an estimate", async () => {
    await start({ faults: { requests: { 1: "stall" } }, idleMs: 300 });
    const [run] = await openRuns(1);
    const stream = await run!.client.chat.completions.create({
      model: "sim-demo",
      stream: true,
      messages: [{ role: "user", content: "tell me a long story" }],
    });
    await expect(
      (async () => {
        for await (const _ of stream) {
          // the first events arrive, then nothing
        }
      })(),
    ).rejects.toThrow();
    await gateway.closeRun(run!.run.id);
    const rows = await ledger.metering.listModelRequests(run!.run.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 200, stream: true, usage_estimated: true });
    expect(rows[0]!.error).toMatch(/stalled for 300 ms/);
    expect(rows[0]!.input_tokens).toBeGreaterThan(0);
  });

  it("meters a stream the provider drops midway exactly once", async () => {
    await start({ faults: { requests: { 1: "drop" } } });
    const [run] = await openRuns(1);
    const stream = await run!.client.chat.completions.create({
      model: "sim-demo",
      stream: true,
      messages: [{ role: "user", content: "tell me a long story" }],
    });
    await expect(
      (async () => {
        for await (const _ of stream) {
          // drain until the connection drops
        }
      })(),
    ).rejects.toThrow();
    await gateway.closeRun(run!.run.id);
    const rows = await ledger.metering.listModelRequests(run!.run.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ stream: true, usage_estimated: true });
  });
});
