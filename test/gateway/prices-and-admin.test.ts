import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { bundledPrices, Gateway, loadPrices, parsePriceTable } from "../../src/gateway/index.ts";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { type RunningSimulator, startSimulator } from "../../src/sim/index.ts";

describe("the price table", () => {
  it("prices a dated model name by the listed name it starts with", () => {
    expect(bundledPrices.priceOf("claude-sonnet-4-5-20250929")).toEqual(
      bundledPrices.priceOf("claude-sonnet-4-5"),
    );
    expect(bundledPrices.priceOf("no-such-model")).toBeUndefined();
    // 1M input at $3 and 1M output at $15; cached input at its own price.
    expect(
      bundledPrices.costOf("sim-demo", { inputTokens: 1_000_000, outputTokens: 1_000_000 }),
    ).toBeCloseTo(18);
    expect(
      bundledPrices.costOf("sim-demo", {
        inputTokens: 1_000_000,
        outputTokens: 0,
        cachedInputTokens: 1_000_000,
      }),
    ).toBeCloseTo(0.3);
  });

  it("refuses a bad file with what is wrong, where, and the expected shape", () => {
    const bad = (text: string) => () => parsePriceTable(text, "my-prices.json");
    expect(bad("{not json")).toThrow(/price table my-prices.json is invalid: not valid JSON/);
    expect(bad('{"models": {}}')).toThrow(/as_of/);
    expect(bad('{"as_of": "2026-11-01", "models": {"m": {"input": -1, "output": 2}}}')).toThrow(
      /models\.m\.input/,
    );
    expect(
      bad('{"as_of": "2026-11-01", "models": {"m": {"input": 1, "output": 2, "outptu": 3}}}'),
    ).toThrow(/outptu/);
    let caught: unknown;
    try {
      bad("[]")();
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({
      code: "prices_invalid",
      hint: expect.stringContaining('"as_of"'),
    });
  });

  it("lays a user's file over the bundled one, and says so when the file is missing", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-prices-"));
    try {
      const file = path.join(dir, "prices.json");
      await writeFile(
        file,
        JSON.stringify({
          as_of: "2026-12-01",
          models: { "sim-demo": { input: 1, output: 2 }, "my-model": { input: 4, output: 8 } },
        }),
      );
      const prices = await loadPrices(file);
      expect(prices.asOf).toBe("2026-12-01");
      expect(prices.priceOf("sim-demo")).toMatchObject({ input: 1, output: 2 });
      expect(prices.priceOf("my-model")).toMatchObject({ input: 4, output: 8 });
      expect(prices.priceOf("claude-haiku-4-5")).toEqual(bundledPrices.priceOf("claude-haiku-4-5"));
      await expect(loadPrices(path.join(dir, "nope.json"))).rejects.toMatchObject({
        code: "prices_missing",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the gateway's admin API", () => {
  let ledger: Ledger;
  let sim: RunningSimulator;
  let gateway: Gateway;

  afterEach(async () => {
    await gateway.close();
    await sim.close();
    await ledger.close();
  });

  it("issues and revokes run keys only for the holder of the admin token", async () => {
    ledger = await openLedger({ kind: "memory" });
    sim = await startSimulator({ policy: () => ({ content: "ok" }) });
    gateway = new Gateway({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: {},
      upstreams: { "openai-chat": { baseURL: sim.rootUrl, apiKey: "k", auth: "bearer" } },
      adminToken: "admin-secret",
    });
    await gateway.listen();
    const [order] = await ledger.addOrders([{ title: "remote worker" }]);
    const claim = await ledger.claimNext({
      workerId: "w",
      leaseMs: 60_000,
      agent: "t",
      model: "sim-demo",
    });
    const admin = (method: string, url: string, token?: string, body?: unknown) =>
      fetch(`${gateway.url}${url}`, {
        method,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        ...(body === undefined
          ? {}
          : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });
    expect((await admin("POST", "/admin/keys", undefined, { runId: 1, orderId: 1 })).status).toBe(
      401,
    );
    expect(
      (await admin("POST", "/admin/keys", "wrong-token", { runId: 1, orderId: 1 })).status,
    ).toBe(401);
    const bad = await admin("POST", "/admin/keys", "admin-secret", "{oops");
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/runId/);
    const issued = await admin("POST", "/admin/keys", "admin-secret", {
      runId: claim!.run.id,
      orderId: order!.id,
    });
    const access = (await issued.json()) as { baseURL: string; apiKey: string };
    const chat = () =>
      fetch(`${access.baseURL}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${access.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "sim-demo", messages: [{ role: "user", content: "hi" }] }),
      });
    expect((await chat()).status).toBe(200);
    expect((await admin("DELETE", `/admin/keys/${claim!.run.id}`, "admin-secret")).status).toBe(
      200,
    );
    expect((await chat()).status).toBe(401);
  });
});
