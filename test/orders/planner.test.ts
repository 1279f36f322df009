import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { providerUpstream } from "../../src/cli/models.ts";
import { providerSettings } from "../../src/config/index.ts";
import { bundledPrices, Gateway, modelRouter } from "../../src/gateway/index.ts";
import { openLedger } from "../../src/ledger/index.ts";
import {
  PLANNER_MARKER,
  PlanUnusableError,
  parsePlan,
  planGoal,
  plannedWorkOrders,
} from "../../src/orders/index.ts";
import { messagesText, startSimulator } from "../../src/sim/index.ts";
import { startFakeAnthropic } from "../support/fake-providers.ts";

const PLAN = {
  orders: [
    {
      key: "csv-writer",
      title: "Add a CSV writer",
      spec: "Export toCsv(rows) from src/csv.ts.",
      acceptance: "toCsv([[1,2]]) === '1,2\\n'; npm test passes",
      scope: ["src/csv.ts", "test/csv.test.ts"],
    },
    {
      key: "export-flag",
      title: "Add --csv to export",
      acceptance: "export --csv prints CSV",
      priority: 2,
      scope: ["src/cli/"],
      depends_on: ["csv-writer"],
    },
  ],
};

const context = { existingKeys: ["old"], maxOrders: 5 };

function problemsOf(text: string, ctx = context): string {
  try {
    parsePlan(text, ctx);
  } catch (error) {
    expect(error).toBeInstanceOf(PlanUnusableError);
    expect((error as PlanUnusableError).code).toBe("plan_unusable");
    expect((error as PlanUnusableError).message).toContain("nothing was added");
    return (error as PlanUnusableError).message;
  }
  throw new Error("the plan was accepted");
}

describe("parsePlan: a model's answer is taken whole or refused with the reasons", () => {
  it("takes a plan, in a ```json fence or not, with defaults filled", () => {
    const fenced = `Here is the plan:\n\`\`\`json\n${JSON.stringify(PLAN)}\n\`\`\`\n`;
    for (const text of [JSON.stringify(PLAN), fenced]) {
      const orders = parsePlan(text, context);
      expect(orders.map((o) => o.key)).toEqual(["csv-writer", "export-flag"]);
      expect(orders[0]).toMatchObject({ priority: 0, depends_on: [] });
    }
  });

  it("refuses prose, a wrong shape, duplicates, unknown dependencies, cycles and too many orders", () => {
    expect(problemsOf("I would start by adding a CSV writer.")).toContain("is not JSON");
    expect(problemsOf(JSON.stringify({ orders: [] }))).toContain("has no orders");
    const noAcceptance = { orders: [{ key: "a", title: "A" }] };
    expect(problemsOf(JSON.stringify(noAcceptance))).toContain("orders[0].acceptance");
    const badScope = { orders: [{ key: "a", title: "A", acceptance: "x", scope: ["../etc"] }] };
    expect(problemsOf(JSON.stringify(badScope))).toContain("inside the repository");
    const extra = { orders: [{ key: "a", title: "A", acceptance: "x", owner: "me" }] };
    expect(problemsOf(JSON.stringify(extra))).toContain("owner");
    const twice = { orders: [PLAN.orders[0], PLAN.orders[0]] };
    expect(problemsOf(JSON.stringify(twice))).toContain('"csv-writer" is used twice');
    const reused = { orders: [{ ...PLAN.orders[0], key: "old" }] };
    expect(problemsOf(JSON.stringify(reused))).toContain("already an order's key");
    const unknown = { orders: [{ ...PLAN.orders[1] }] };
    expect(problemsOf(JSON.stringify(unknown))).toContain('"csv-writer" is no order');
    const cycle = {
      orders: [
        { key: "a", title: "A", acceptance: "x", depends_on: ["b"] },
        { key: "b", title: "B", acceptance: "x", depends_on: ["a"] },
      ],
    };
    expect(problemsOf(JSON.stringify(cycle))).toContain("a -> b -> a");
    expect(problemsOf(JSON.stringify(PLAN), { existingKeys: [], maxOrders: 1 })).toContain(
      "more than the 1 allowed",
    );
  });

  it("depending on an order already in the factory is fine", () => {
    const plan = { orders: [{ key: "n", title: "N", acceptance: "x", depends_on: ["old"] }] };
    expect(parsePlan(JSON.stringify(plan), context)[0]?.depends_on).toEqual(["old"]);
  });
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function gatewayOver(options: ConstructorParameters<typeof Gateway>[0]) {
  const gateway = new Gateway(options);
  await gateway.listen();
  cleanups.push(() => gateway.close());
  return gateway;
}

async function planThrough(gateway: Gateway, model: string) {
  const endpoint = gateway.openFactory(null);
  try {
    return await planGoal({
      goal: "Users want to export their data as CSV",
      model,
      endpoint,
      repository: "files: src/index.ts",
      existingKeys: [],
      maxOrders: 10,
    });
  } finally {
    await endpoint.close();
  }
}

describe("planGoal through the gateway", () => {
  it("on the simulator: a scripted planner reply becomes orders that wait, metered as the factory's", async () => {
    const seen: string[] = [];
    const sim = await startSimulator({
      policy: (request) => {
        const system = messagesText(request, ["system"]);
        seen.push(system);
        return system.includes(PLANNER_MARKER)
          ? { content: JSON.stringify(PLAN) }
          : { content: "not the planner" };
      },
    });
    cleanups.push(() => sim.close());
    const ledger = await openLedger({ kind: "memory" });
    cleanups.push(() => ledger.close());
    const gateway = await gatewayOver({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: {},
      upstreams: { "openai-chat": { baseURL: sim.rootUrl, apiKey: "k", auth: "bearer" } },
    });
    const planned = await planThrough(gateway, "sim-demo");
    expect(seen.some((s) => s.includes(PLANNER_MARKER))).toBe(true);
    const added = await ledger.addOrders(plannedWorkOrders(planned, true));
    expect(added.map((o) => [o.key, o.status, o.source])).toEqual([
      ["csv-writer", "waiting", "planner"],
      ["export-flag", "waiting", "planner"],
    ]);
    expect(added[1]).toMatchObject({
      priority: 2,
      scope: ["src/cli/"],
      depends_on: ["csv-writer"],
    });
    const requests = await ledger.metering.listModelRequests();
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ run_id: null, order_id: null, status: 200 });
  });

  it("on the simulator: an unusable answer is refused and nothing is added", async () => {
    const sim = await startSimulator({ policy: () => ({ content: '{"orders": [{"title": 3}]}' }) });
    cleanups.push(() => sim.close());
    const ledger = await openLedger({ kind: "memory" });
    cleanups.push(() => ledger.close());
    const gateway = await gatewayOver({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: {},
      upstreams: { "openai-chat": { baseURL: sim.rootUrl, apiKey: "k", auth: "bearer" } },
    });
    await expect(planThrough(gateway, "sim-demo")).rejects.toMatchObject({
      code: "plan_unusable",
      message: expect.stringContaining("orders[0].key"),
    });
    expect(await ledger.listOrders()).toEqual([]);
  });

  it("on a fake of Anthropic's API, translated from Chat Completions by the gateway", async () => {
    const KEY = "sk-ant-test";
    const fake = await startFakeAnthropic({
      apiKey: KEY,
      script: (request) => {
        const system = JSON.stringify(request.body.system ?? "");
        return system.includes("planner of nightshift")
          ? { text: `\`\`\`json\n${JSON.stringify(PLAN)}\n\`\`\`` }
          : { text: "?" };
      },
    });
    cleanups.push(() => fake.close());
    const ledger = await openLedger({ kind: "memory" });
    cleanups.push(() => ledger.close());
    const settings = providerSettings("anthropic", { base_url: fake.url });
    const gateway = await gatewayOver({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: {},
      router: modelRouter([
        { ...settings, upstream: providerUpstream(settings, { ANTHROPIC_API_KEY: KEY }) },
      ]),
      retry: { attempts: 1 },
    });
    const planned = await planThrough(gateway, "claude-sonnet-5-5");
    expect(planned.map((o) => o.title)).toEqual(["Add a CSV writer", "Add --csv to export"]);
    expect(fake.requests.at(-1)?.path).toBe("/v1/messages");
    const [request] = await ledger.metering.listModelRequests();
    expect(request).toMatchObject({ protocol: "openai-chat", model: "claude-sonnet-5-5" });
    expect(request!.cost_usd).toBeGreaterThan(0);
  });
});
