import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import OpenAI from "openai";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { bundledPrices, Gateway, Meter, Transcripts } from "../../src/gateway/index.ts";
import { type Ledger, type NewModelRequest, openLedger } from "../../src/ledger/index.ts";
import { type Policy, type RunningSimulator, startSimulator } from "../../src/sim/index.ts";
import { ledgerBackends, openTestLedger } from "../support/ledgers.ts";

const silent = pino({ level: "silent" });
let ledger: Ledger | undefined;
let sim: RunningSimulator | undefined;
let gateway: Gateway | undefined;

afterEach(async () => {
  await gateway?.close().catch(() => undefined);
  await sim?.close();
  await ledger?.close().catch(() => undefined);
  gateway = undefined;
  sim = undefined;
  ledger = undefined;
});

async function start(options: { policy?: Policy; ledger?: Ledger; adminToken?: string } = {}) {
  ledger = options.ledger ?? (await openLedger({ kind: "memory" }));
  sim = await startSimulator({ policy: options.policy ?? (() => ({ content: "fine, thanks" })) });
  gateway = new Gateway({
    ledger,
    logger: silent,
    prices: bundledPrices,
    limits: { runTokens: 1_000_000 },
    upstreams: { "openai-chat": { baseURL: sim.rootUrl, apiKey: "k", auth: "bearer" } },
    retry: { attempts: 1 },
    meter: { maxRetryDelayMs: 50 },
    ...(options.adminToken ? { adminToken: options.adminToken } : {}),
  });
  await gateway.listen();
  await ledger.addOrders([{ title: "o" }]);
  const claim = await ledger.claimNext({ workerId: "w", leaseMs: 60_000, agent: "t", model: "m" });
  return { runId: claim!.run.id, orderId: claim!.order.id };
}

function row(requestId: string, runId: number | null, orderId: number | null): NewModelRequest {
  return {
    request_id: requestId,
    run_id: runId,
    order_id: orderId,
    protocol: "openai-chat",
    model: "sim-demo",
    status: 200,
    stream: false,
    input_tokens: 3,
    output_tokens: 2,
    cached_input_tokens: 0,
    cost_usd: 0,
    usage_estimated: false,
    latency_ms: 1,
    attempts: 1,
    error: null,
  };
}

describe("the admin API", () => {
  it("refuses a key for a run the ledger does not have (404) and forwards nothing", async () => {
    const { runId, orderId } = await start({ adminToken: "admin" });
    const post = (body: unknown) =>
      fetch(`${gateway!.url}/admin/keys`, {
        method: "POST",
        headers: { authorization: "Bearer admin" },
        body: JSON.stringify(body),
      });
    const unknown = await post({ runId: 424_242, orderId });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error).toMatchObject({
      code: "unknown_run",
      message: expect.stringMatching(/run 424242 is not in the ledger.*nightshift status/),
    });
    const wrongOrder = await post({ runId, orderId: orderId + 1 });
    expect(wrongOrder.status).toBe(400);
    expect((await wrongOrder.json()).error.message).toMatch(
      new RegExp(`belongs to work order ${orderId}`),
    );
    expect(gateway!.keys.active).toBe(0);
    expect(sim!.stats.requests).toBe(0);
    const bad = await fetch(`${gateway!.url}/admin/keys/abc`, {
      method: "DELETE",
      headers: { authorization: "Bearer admin" },
    });
    expect(bad.status).toBe(400);
  });
});

describe.each(ledgerBackends)("the meter on $name", ({ location }) => {
  it("moves a row the ledger refuses to the dead letters while every other row keeps flowing", async () => {
    const { ledger: own, dispose } = await openTestLedger(location());
    try {
      await own.addOrders([{ title: "o" }]);
      const claim = await own.claimNext({ workerId: "w", leaseMs: 60_000, agent: "t", model: "m" });
      const meter = new Meter(own.metering, silent);
      meter.record(row("good-1", claim!.run.id, claim!.order.id));
      // A run that is not in the ledger: its foreign key fails, forever.
      meter.record(row("poison", 424_242, claim!.order.id));
      meter.record(row("good-2", claim!.run.id, claim!.order.id));
      await meter.flush();
      expect(meter.healthy).toBe(true);
      expect((await own.metering.listModelRequests()).map((r) => r.request_id)).toEqual([
        "good-1",
        "good-2",
      ]);
      const [letter] = await own.metering.listDeadLetters();
      expect(letter).toMatchObject({ request_id: "poison" });
      expect(letter!.reason).toMatch(/foreign key|violates/);
      meter.record(row("good-3", claim!.run.id, claim!.order.id));
      await meter.close();
      expect(await own.metering.listModelRequests()).toHaveLength(3);
    } finally {
      await dispose();
    }
  });
});

describe("failing closed", () => {
  it("refuses requests only while the ledger is down, and recovers by itself", async () => {
    const real = await openLedger({ kind: "memory" });
    let down = false;
    const unavailable = () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:5432"));
    // The ledger as the gateway sees it: every call (its metering and budgets too) fails while
    // `down`, like a server that stopped.
    const failWhileDown = <T extends object>(part: T): T =>
      new Proxy(part, {
        get(target, name, receiver) {
          const value: unknown = Reflect.get(target, name, receiver);
          if (name === "metering" || name === "budgets") return failWhileDown(value as object);
          if (typeof value !== "function") return value;
          return (...args: unknown[]) => (down ? unavailable() : value.apply(target, args));
        },
      });
    const flaky = failWhileDown(real);
    const { runId, orderId } = await start({ ledger: flaky });
    const access = await gateway!.openRun({ runId, orderId });
    const client = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    const ask = () =>
      client.chat.completions.create({
        model: "sim-demo",
        messages: [{ role: "user", content: "hi" }],
      });
    await ask();
    down = true;
    await expect(ask()).rejects.toMatchObject({ status: 503 });
    const forwarded = sim!.stats.requests;
    await expect(ask()).rejects.toThrow(/fail closed/);
    expect(sim!.stats.requests).toBe(forwarded);
    down = false;
    await vi.waitFor(
      async () => expect((await ask()).choices[0]?.message.content).toBe("fine, thanks"),
      {
        timeout: 10_000,
        interval: 20,
      },
    );
    await gateway!.closeRun(runId);
    expect(gateway!.meter.healthy).toBe(true);
    expect(
      (await real.metering.listModelRequests(runId)).filter((r) => r.status === 200),
    ).toHaveLength(sim!.stats.requests);
  });

  it("closes within its deadline when the ledger is down, losing nothing silently", async () => {
    const { runId, orderId } = await start();
    const access = await gateway!.openRun({ runId, orderId });
    const client = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    await client.chat.completions.create({
      model: "sim-demo",
      messages: [{ role: "user", content: "hi" }],
    });
    await gateway!.meter.flush();
    await ledger!.close();
    gateway!.meter.record(row("unrecorded", runId, orderId));
    // An idle keep-alive connection from the client must not hold the shutdown either.
    await expect(gateway!.close()).rejects.toMatchObject({ code: "metering_lost" });
    gateway = undefined;
    ledger = undefined;
  });
});

describe("a client that goes away", () => {
  it("before the reply: the provider's reply is still read and metered with its usage", async () => {
    let arrived: () => void = () => undefined;
    const upstreamHasIt = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const { runId, orderId } = await start({
      policy: () => {
        arrived();
        return { content: "a reply nobody waits for", delayMs: 300 };
      },
    });
    const access = await gateway!.openRun({ runId, orderId });
    const abort = new AbortController();
    const request = fetch(`${access.baseURL}/chat/completions`, {
      method: "POST",
      signal: abort.signal,
      headers: { authorization: `Bearer ${access.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "sim-demo", messages: [{ role: "user", content: "hi" }] }),
    });
    await upstreamHasIt;
    abort.abort();
    await expect(request).rejects.toThrow();
    await vi.waitFor(
      async () => {
        await gateway!.meter.flush();
        expect(await ledger!.metering.listModelRequests(runId)).toHaveLength(1);
      },
      { timeout: 10_000, interval: 20 },
    );
    const [metered] = await ledger!.metering.listModelRequests(runId);
    expect(metered).toMatchObject({
      status: 200,
      usage_estimated: false,
      input_tokens: sim!.stats.promptTokens,
      output_tokens: sim!.stats.completionTokens,
    });
    expect(metered!.output_tokens).toBeGreaterThan(0);
  });

  it("in the middle of a stream: the rest is read from the provider and metered exactly", async () => {
    sim = undefined;
    const { runId, orderId } = await start({
      policy: () => ({ content: "word ".repeat(200) }),
    });
    await sim!.close();
    sim = await startSimulator({
      policy: () => ({ content: "word ".repeat(200) }),
      latency: { tokensPerSecond: 2_000 },
    });
    await gateway!.close();
    gateway = new Gateway({
      ledger: ledger!,
      logger: silent,
      prices: bundledPrices,
      limits: {},
      upstreams: { "openai-chat": { baseURL: sim.rootUrl, apiKey: "k", auth: "bearer" } },
    });
    await gateway.listen();
    const access = await gateway.openRun({ runId, orderId });
    const client = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "sim-demo",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "a long one" }],
    });
    for await (const _ of stream) break; // the client reads one chunk and leaves
    await vi.waitFor(
      async () => {
        await gateway!.meter.flush();
        expect(await ledger!.metering.listModelRequests(runId)).toHaveLength(1);
      },
      { timeout: 10_000, interval: 20 },
    );
    const [metered] = await ledger!.metering.listModelRequests(runId);
    expect(metered).toMatchObject({
      status: 200,
      stream: true,
      usage_estimated: false,
      input_tokens: sim.stats.promptTokens,
      output_tokens: sim.stats.completionTokens,
    });
    expect(metered!.error).toMatch(/client closed the stream/);
  });
});

describe("transcripts", () => {
  it("write every line of a burst, in batches, and make writers wait when the queue is full", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-transcripts-"));
    try {
      const transcripts = new Transcripts(dir, { maxQueuedChars: 10_000 });
      let waited = 0;
      const waits: Promise<void>[] = [];
      for (let i = 0; i < 2_000; i++) {
        const wait = transcripts.append(i % 7, {
          requestId: `r${i}`,
          at: new Date().toISOString(),
          protocol: "openai-chat",
          model: "m",
          status: 200,
          request: `request ${i} ${"x".repeat(200)}`,
          response: "ok",
        });
        if (wait) {
          waited++;
          waits.push(wait);
        }
      }
      expect(waited).toBeGreaterThan(0);
      await Promise.all(waits);
      await transcripts.flush();
      expect(transcripts.backlog).toBe(0);
      let lines = 0;
      for (let run = 0; run < 7; run++) {
        const text = await readFile(transcripts.fileOf(run), "utf8");
        const ids = text
          .split("\n")
          .filter(Boolean)
          .map((l) => Number((JSON.parse(l) as { requestId: string }).requestId.slice(1)));
        // In order within a run, none lost.
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
        lines += ids.length;
      }
      expect(lines).toBe(2_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
