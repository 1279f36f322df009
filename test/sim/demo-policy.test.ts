import { describe, expect, it } from "vitest";
import { type ChatRequest, parseChatRequest } from "../../src/protocols/index.ts";
import {
  type DemoOrder,
  DemoPolicyError,
  type DemoPolicyOptions,
  demoOrders,
  demoPolicy,
  findDemoOrder,
  GIVE_UP_REPLY,
  type PolicyReply,
  sampleTestCommand,
  UNKNOWN_ORDER_REPLY,
} from "../../src/sim/index.ts";

const ctx = { requestIndex: 0 };

function firstOrder(): DemoOrder {
  const order = demoOrders[0];
  if (!order) throw new Error("no demo orders");
  return order;
}

/** A conversation as the built-in agent would send it, `turn` assistant replies in. */
function conversation(userText: string, turn = 0): ChatRequest {
  const messages: unknown[] = [
    { role: "system", content: "You are a coding agent." },
    { role: "user", content: userText },
  ];
  for (let i = 0; i < turn; i++) {
    const id = `call_${i}`;
    messages.push({
      role: "assistant",
      content: null,
      tool_calls: [{ id, type: "function", function: { name: "list_files", arguments: "{}" } }],
    });
    messages.push({ role: "tool", tool_call_id: id, content: "ok" });
  }
  return parseChatRequest({ model: "nightshift-sim", messages });
}

function orderPrompt(order: DemoOrder, variant: number): string {
  return `Work order: ${order.title}\n\n${order.spec}\n\nAcceptance: ${order.acceptance}\n(run ${variant})`;
}

async function turnOne(options: DemoPolicyOptions, prompt: string): Promise<PolicyReply> {
  return demoPolicy(options)(conversation(prompt, 1), ctx);
}

type Outcome = "correct" | "broken" | "give_up";

function classify(order: DemoOrder, reply: PolicyReply): Outcome {
  if (reply.content === GIVE_UP_REPLY) return "give_up";
  const written = Object.fromEntries(
    (reply.toolCalls ?? []).map((c) => {
      const args = c.arguments as { path: string; content: string };
      expect(c.name).toBe("write_file");
      return [args.path, args.content];
    }),
  );
  if (JSON.stringify(written) === JSON.stringify(order.files)) return "correct";
  expect(written).toEqual(order.brokenFiles);
  return "broken";
}

async function outcomes(options: DemoPolicyOptions, runs: number, feedback = false) {
  const counts: Record<Outcome, number> = { correct: 0, broken: 0, give_up: 0 };
  for (let i = 0; i < runs; i++) {
    const order = demoOrders[i % demoOrders.length] ?? firstOrder();
    const suffix = feedback ? "\n\n## Feedback from the previous attempt\nTests failed." : "";
    counts[classify(order, await turnOne(options, orderPrompt(order, i) + suffix))] += 1;
  }
  return counts;
}

describe("demoPolicy", () => {
  it("follows the plan: list, write the patch, run the tests, report", async () => {
    const order = firstOrder();
    const policy = demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 });
    const prompt = orderPrompt(order, 0);
    const replies = await Promise.all(
      [0, 1, 2, 3].map((t) => policy(conversation(prompt, t), ctx)),
    );
    expect(replies[0]).toEqual({ toolCalls: [{ name: "list_files", arguments: {} }] });
    expect(replies[1]?.toolCalls?.length).toBe(Object.keys(order.files).length);
    expect(classify(order, replies[1] ?? {})).toBe("correct");
    expect(replies[2]).toEqual({
      toolCalls: [{ name: "run_command", arguments: { command: sampleTestCommand() } }],
    });
    expect(sampleTestCommand()).toMatch(/^node --import file:.*tsx.* scripts\/run-tests\.mjs$/);
    expect(replies[3]?.toolCalls ?? []).toEqual([]);
    expect(replies[3]?.content).toBe(`Implemented ${order.key} with tests.`);
  });

  it("gives up after looking around when told to", async () => {
    const policy = demoPolicy({ giveUpRate: 1, brokenPatchRate: 0 });
    const prompt = orderPrompt(firstOrder(), 0);
    expect((await policy(conversation(prompt, 0), ctx)).toolCalls?.[0]?.name).toBe("list_files");
    expect(await policy(conversation(prompt, 1), ctx)).toEqual({ content: GIVE_UP_REPLY });
  });

  it("is deterministic per seed and prompt, and the seed matters", async () => {
    const options = { seed: 7, brokenPatchRate: 0.5, giveUpRate: 0 };
    const first = await outcomes(options, 40);
    expect(await outcomes(options, 40)).toEqual(first);
    const perRun = async (seed: number) => {
      const out: Outcome[] = [];
      for (let i = 0; i < 40; i++) {
        const order = demoOrders[i % demoOrders.length] ?? firstOrder();
        out.push(classify(order, await turnOne({ ...options, seed }, orderPrompt(order, i))));
      }
      return out.join(",");
    };
    expect(await perRun(7)).toBe(await perRun(7));
    expect(await perRun(7)).not.toBe(await perRun(8));
  });

  it("respects the rates", async () => {
    expect(await outcomes({ brokenPatchRate: 1 }, 30)).toEqual({
      correct: 0,
      broken: 30,
      give_up: 0,
    });
    expect(await outcomes({ brokenPatchRate: 0, giveUpRate: 0 }, 30)).toEqual({
      correct: 30,
      broken: 0,
      give_up: 0,
    });
    const mixed = await outcomes({ brokenPatchRate: 0.3, giveUpRate: 0.2 }, 400);
    expect(mixed.broken / 400).toBeGreaterThan(0.22);
    expect(mixed.broken / 400).toBeLessThan(0.38);
    expect(mixed.give_up / 400).toBeGreaterThan(0.13);
    expect(mixed.give_up / 400).toBeLessThan(0.27);
  });

  it("uses fixOnFeedbackRate when the prompt carries a previous attempt", async () => {
    const broke = { brokenPatchRate: 1, giveUpRate: 0 };
    expect(await outcomes({ ...broke, fixOnFeedbackRate: 1 }, 30, true)).toEqual({
      correct: 30,
      broken: 0,
      give_up: 0,
    });
    expect((await outcomes({ ...broke, fixOnFeedbackRate: 0 }, 30, true)).broken).toBe(30);
    const never = { brokenPatchRate: 0, giveUpRate: 1 };
    const mixed = await outcomes({ ...never, fixOnFeedbackRate: 0.5 }, 300, true);
    expect(mixed.give_up).toBe(0);
    expect(mixed.correct / 300).toBeGreaterThan(0.38);
    expect(mixed.correct / 300).toBeLessThan(0.62);
  });

  it("explains itself when no demo order is named", async () => {
    const reply = await demoPolicy()(conversation("Please refactor the billing module."), ctx);
    expect(reply).toEqual({ content: UNKNOWN_ORDER_REPLY });
  });

  it("rejects rates outside [0, 1]", () => {
    expect(() => demoPolicy({ brokenPatchRate: 1.5 })).toThrow(DemoPolicyError);
    expect(() => demoPolicy({ giveUpRate: Number.NaN })).toThrow(/giveUpRate/);
  });
});

describe("demo orders", () => {
  it("have unique titles that do not contain one another", () => {
    expect(demoOrders.length).toBeGreaterThanOrEqual(10);
    for (const a of demoOrders) {
      for (const b of demoOrders) if (a !== b) expect(b.title.includes(a.title)).toBe(false);
      expect(findDemoOrder(`Title: ${a.title}`)).toBe(a);
    }
  });

  it("touch only their own new files, with identical tests in both patches", () => {
    const seen = new Set<string>();
    for (const order of demoOrders) {
      expect(Object.keys(order.brokenFiles).sort()).toEqual(Object.keys(order.files).sort());
      for (const path of Object.keys(order.files)) {
        expect(seen.has(path)).toBe(false);
        seen.add(path);
        if (path.startsWith("test/")) expect(order.brokenFiles[path]).toBe(order.files[path]);
        else expect(order.brokenFiles[path]).not.toBe(order.files[path]);
      }
    }
  });
});
