import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AgentDriver,
  type AgentResult,
  type AgentTask,
  BuiltinAgent,
  FEEDBACK_HEADING,
} from "../../src/agents/index.ts";
import type { BudgetLimits } from "../../src/gateway/index.ts";
import type { WorkOrder } from "../../src/ledger/index.ts";
import { describeModelFailure, type ModelAccess, type ModelFailure } from "../../src/line/index.ts";
import type { ChatRequest } from "../../src/protocols/index.ts";
import {
  conversationTurn,
  demoOrders,
  demoPolicy,
  messagesText,
  type Policy,
} from "../../src/sim/index.ts";
import {
  git,
  landedOrderTrailers,
  mainHistory,
  makeDemoRepo,
  startTestLine,
  type TestLine,
  testsPassAt,
} from "../support/line.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function setUp(
  policy: Policy,
  settings: Parameters<typeof startTestLine>[0]["settings"] = {},
  limits: BudgetLimits = {},
) {
  const repo = await makeDemoRepo();
  cleanups.push(repo.cleanup);
  const line = await startTestLine({ repo: repo.dir, policy, settings, limits });
  cleanups.push(line.close);
  return { repo: repo.dir, ...line };
}

function addDemoOrders(t: TestLine, count: number, maxAttempts?: number) {
  return t.ledger.addOrders(
    demoOrders.slice(0, count).map((o) => ({
      title: o.title,
      spec: o.spec,
      acceptance: o.acceptance,
      ...(maxAttempts ? { maxAttempts } : {}),
    })),
  );
}

/** The built-in agent under another name, noting every task it is given. */
function namedAgent(name: string, tasks: { driver: string; model: string }[]): AgentDriver {
  const inner = new BuiltinAgent();
  return {
    name,
    run(task, emit, signal) {
      tasks.push({ driver: name, model: task.model });
      return inner.run(task, emit, signal);
    },
  };
}

/** A CLI agent whose model requests fail: it ends in its own words, as Claude Code does. */
function failingAgent(endings: Pick<AgentResult, "reason" | "summary">[]): AgentDriver & {
  tasks: AgentTask[];
} {
  const tasks: AgentTask[] = [];
  return {
    name: "claude-code",
    tasks,
    async run(task) {
      tasks.push(task);
      const ending = endings[Math.min(tasks.length, endings.length) - 1]!;
      return { ...ending, inputTokens: 0, outputTokens: 0 };
    },
  };
}

/** The gateway, reporting `failure` as the last failed model request of every run it closes. */
function failingModels(failure: ModelFailure) {
  return (gateway: ModelAccess): ModelAccess => ({
    openRun: (grant) => gateway.openRun(grant),
    closeRun: async (runId) => ({ ...(await gateway.closeRun(runId)), failure }),
  });
}

function recording(policy: Policy, requests: ChatRequest[]): Policy {
  return (request, ctx) => {
    requests.push(request);
    return policy(request, ctx);
  };
}

describe("the line", () => {
  it("never lands a broken patch: the order fails after its attempts and main does not move", async () => {
    const t = await setUp(demoPolicy({ brokenPatchRate: 1, giveUpRate: 0, fixOnFeedbackRate: 0 }));
    const before = mainHistory(t.repo);
    await addDemoOrders(t, 2, 2);

    await t.line.run();

    expect(mainHistory(t.repo)).toEqual(before);
    const orders = await t.ledger.listOrders();
    expect(orders.map((o) => o.status)).toEqual(["failed", "failed"]);
    for (const order of orders) {
      expect(order.attempts).toBe(2);
      expect(order.failure_reason).toMatch(/test gate failed \(exit 1\) \(attempt 2 of 2\)/);
    }
    const runs = await t.ledger.listRuns();
    expect(runs).toHaveLength(4);
    for (const run of runs) {
      expect(run.status).toBe("rejected");
      const gates = await t.ledger.listGateResults(run.id);
      expect(gates.map((g) => [g.gate, g.stage, g.passed])).toEqual([["test", "candidate", false]]);
      expect(gates[0]?.output).toMatch(/not ok|fail/i);
    }
    // Failed runs keep their worktrees for inspection (within the caps).
    expect((await t.workspaces.listKept()).length).toBe(4);
  });

  it("feeds a failed gate's output to the next attempt, whose fixed patch lands", async () => {
    const requests: ChatRequest[] = [];
    const t = await setUp(
      recording(demoPolicy({ brokenPatchRate: 1, giveUpRate: 0, fixOnFeedbackRate: 1 }), requests),
    );
    const [order] = await addDemoOrders(t, 1);

    await t.line.run();

    const after = await t.ledger.getOrder(order!.id);
    expect(after?.status).toBe("landed");
    expect(after?.attempts).toBe(2);
    const runs = await t.ledger.listRuns(order!.id);
    expect(runs.map((r) => r.status)).toEqual(["rejected", "landed"]);
    // The retry's prompt carried the failing test's output.
    const retryPrompt = requests
      .map((r) => messagesText(r, ["user"]))
      .find((text) => text.includes(FEEDBACK_HEADING));
    expect(retryPrompt).toBeDefined();
    expect(retryPrompt).toContain(`Gate "test" failed with exit code 1`);
    expect(retryPrompt).toMatch(/not ok|AssertionError|expected/i);
    expect(landedOrderTrailers(t.repo)).toEqual([`WO-${order!.id}`]);
    expect(testsPassAt(t.repo, "main")).toBe(true);
  });

  it("sends an order that conflicts with a change landed meanwhile back for a fresh run", async () => {
    // Both orders create NOTES.md from the same base: whichever lands second conflicts.
    const notesPolicy: Policy = (request) => {
      const title = /Work order WO-\d+: (.*)/.exec(messagesText(request, ["user"]))?.[1] ?? "?";
      if (conversationTurn(request) === 0) {
        return {
          toolCalls: [
            { name: "write_file", arguments: { path: "NOTES.md", content: `${title}\n` } },
          ],
        };
      }
      return { content: "Wrote the notes." };
    };
    const t = await setUp(notesPolicy, { concurrency: 2 });
    await t.ledger.addOrders([{ title: "notes from alpha" }, { title: "notes from beta" }]);

    await t.line.run();

    const orders = await t.ledger.listOrders();
    expect(orders.map((o) => o.status)).toEqual(["landed", "landed"]);
    const runs = await t.ledger.listRuns();
    const conflicted = runs.filter((r) => r.outcome_reason?.startsWith("conflict with main"));
    expect(conflicted).toHaveLength(1);
    expect(conflicted[0]?.outcome_reason).toContain("NOTES.md");
    expect(conflicted[0]?.status).toBe("rejected");
    const secondTitle = orders.find((o) => o.attempts === 2)?.title;
    expect(git(t.repo, "show", "main:NOTES.md")).toBe(secondTitle);
  });

  it("puts candidates left in the merge queue by a dead worker back in it, in order, without new agent runs", async () => {
    const t = await setUp(demoPolicy({ brokenPatchRate: 0, giveUpRate: 0, fixOnFeedbackRate: 1 }));
    const orders = await addDemoOrders(t, 3);
    const [first, second, third] = orders as [WorkOrder, WorkOrder, WorkOrder];
    // What a worker killed mid-queue leaves behind: runs in phase "merging" with gate-passed
    // candidates on their branches. Claims go in id order; the queue order is third, first, second.
    const runs = new Map<number, number>();
    for (const order of orders) {
      const claim = await t.ledger.claimNext({
        workerId: "dead-worker",
        leaseMs: 60_000,
        agent: "builtin",
        model: "sim-demo",
      });
      expect(claim?.order.id).toBe(order.id);
      runs.set(order.id, claim!.run.id);
    }
    const demo = (order: WorkOrder) => demoOrders.find((o) => o.title === order.title)!;
    for (const [order, files] of [
      [third, demo(third).files],
      [first, demo(first).files],
      // Passed its own gates but is red on the stack the queue tests: ejected after the restart.
      [second, demo(second).brokenFiles],
    ] as const) {
      const runId = runs.get(order.id)!;
      const ws = await t.workspaces.create(String(runId));
      for (const [file, content] of Object.entries(files)) {
        await writeFile(path.join(ws.path, file), content);
      }
      const candidate = await t.workspaces.commitAll(ws, {
        message: `${order.title}\n\nWork-Order: WO-${order.id}\nRun: ${runId}\n`,
        authorName: "agent",
        authorEmail: "agent@nightshift.invalid",
      });
      await t.ledger.setRunPhase(runId, "agent", {
        workspace_path: ws.path,
        branch: ws.branch,
        base_commit: ws.baseCommit,
      });
      await t.ledger.setRunPhase(runId, "gates", { candidate_commit: candidate });
      await t.ledger.setRunPhase(runId, "merging");
    }
    // The dead worker's worktree of one run is gone too; its branch is enough.
    await rm(t.workspaces.pathOf(String(runs.get(first.id))), { recursive: true, force: true });

    await t.line.run();

    const after = await t.ledger.listOrders();
    expect(after.map((o) => o.status)).toEqual(["landed", "landed", "landed"]);
    const allRuns = await t.ledger.listRuns();
    // The queued good candidates landed as the very runs that were queued, adopted once.
    for (const order of [first, third]) {
      const ofOrder = allRuns.filter((r) => r.order_id === order.id);
      expect(ofOrder.map((r) => [r.id, r.status, r.adoptions])).toEqual([
        [runs.get(order.id), "landed", 1],
      ]);
    }
    // The red one was ejected through the normal path: feedback, and a fresh run that lands.
    const ofSecond = allRuns.filter((r) => r.order_id === second.id);
    expect(ofSecond.map((r) => r.status)).toEqual(["rejected", "landed"]);
    expect(ofSecond[0]?.outcome_reason).toMatch(/test gate failed .* after rebasing onto main/);
    // The only model requests were the second order's new run.
    const requests = await t.ledger.metering.listModelRequests();
    expect(requests.length).toBeGreaterThan(0);
    expect(new Set(requests.map((r) => r.run_id))).toEqual(new Set([ofSecond[1]?.id]));
    // In the queue's order.
    expect(landedOrderTrailers(t.repo)).toEqual([
      `WO-${third.id}`,
      `WO-${first.id}`,
      `WO-${second.id}`,
    ]);
    for (const commit of mainHistory(t.repo).slice(1))
      expect(testsPassAt(t.repo, commit)).toBe(true);
  });

  it("retries an agent that gives up, telling it so", async () => {
    const t = await setUp(demoPolicy({ brokenPatchRate: 0, giveUpRate: 1, fixOnFeedbackRate: 1 }));
    const [order] = await addDemoOrders(t, 1);

    await t.line.run();

    const runs = await t.ledger.listRuns(order!.id);
    expect(runs.map((r) => r.status)).toEqual(["failed", "landed"]);
    expect(runs[0]?.outcome_reason).toMatch(/^agent made no changes: I could not work out/);
    expect((await t.ledger.getOrder(order!.id))?.status).toBe("landed");
  });

  it("ends a run whose model fails with a recorded reason, and carries on with other orders", async () => {
    const broken: Policy = (request, ctx) => {
      if (messagesText(request, ["user"]).includes("doomed")) throw new Error("upstream exploded");
      return demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 })(request, ctx);
    };
    const t = await setUp(broken);
    await t.ledger.addOrders([{ title: "doomed order", maxAttempts: 1 }]);
    const [good] = await addDemoOrders(t, 1);

    await t.line.run();

    const orders = await t.ledger.listOrders();
    expect(orders[0]?.status).toBe("failed");
    // In the gateway's words first (a one-off 500: an ordinary failed attempt), then the agent's.
    expect(orders[0]?.failure_reason).toMatch(
      /^the model provider failed \(500\): .*upstream exploded \(the agent said: model request failed/,
    );
    expect(t.line.haltedBecause).toBeUndefined();
    expect((await t.ledger.getOrder(good!.id))?.status).toBe("landed");
    const events = await t.ledger.listEvents((await t.ledger.listRuns(orders[0]!.id))[0]!.id);
    expect(events.map((e) => e.kind)).toContain("error");
  });

  it("records a run's agent events and usage in the ledger", async () => {
    const t = await setUp(demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }));
    const [order] = await addDemoOrders(t, 1);

    await t.line.run();

    const [run] = await t.ledger.listRuns(order!.id);
    const kinds = (await t.ledger.listEvents(run!.id)).map((e) => e.kind);
    expect(kinds).toEqual(
      expect.arrayContaining(["tool_call", "tool_result", "file_change", "usage", "done"]),
    );
    expect(kinds.at(-1)).toBe("done");
    expect(run!.input_tokens).toBe(t.simulator.stats.promptTokens);
    expect(run!.output_tokens).toBe(t.simulator.stats.completionTokens);
    expect(run!.cost_usd).toBeGreaterThan(0);
    const states = t.progress.filter((p) => p.orderId === order!.id).map((p) => p.state);
    expect(states).toEqual(["running", "agent", "gates", "merging", "landed"]);
  });

  it("records that the gateway stopped a run at its budget, and fails the order after its attempts", async () => {
    const t = await setUp(
      demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }),
      { maxAttempts: 2 },
      // Each request reserves a bound on its prompt (its bytes) plus 4,096 output tokens until it is
      // metered: the first request's reservation ($0.0752 here) must fit for any to go through.
      { runUsd: 0.08 },
    );
    const [order] = await addDemoOrders(t, 1);

    await t.line.run();

    const after = await t.ledger.getOrder(order!.id);
    expect(after?.status).toBe("failed");
    expect(after?.failure_reason).toMatch(
      /stopped by the gateway: budget exhausted: run \d+ has spent \$0\.\d+ of its \$0\.0800 budget \(\[budget\] max_usd_per_run in nightshift.toml\), and this request needs up to \$0\.\d+ more/,
    );
    const runs = await t.ledger.listRuns(order!.id);
    expect(runs).toHaveLength(2);
    for (const run of runs) {
      expect(run.cost_usd).toBeGreaterThan(0);
      expect(run.cost_usd).toBeLessThanOrEqual(0.08);
      const requests = await t.ledger.metering.listModelRequests(run.id);
      // Some requests went through before the budget (with what is reserved for a reply) ran out.
      expect(requests.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(2);
      expect(requests.filter((r) => r.status === 403)).toHaveLength(1);
      expect(requests.at(-1)?.status).toBe(403);
    }
    expect(mainHistory(t.repo)).toHaveLength(1);
  });

  it("stops taking work when the day's budget runs out, and keeps the order queued for later", async () => {
    const t = await setUp(
      demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }),
      { concurrency: 1 },
      { dayUsd: 0.004 },
    );
    await addDemoOrders(t, 2);

    await t.line.run();

    expect(t.line.haltedBecause).toMatch(/budget exhausted: the factory today \(UTC\)/);
    const orders = await t.ledger.listOrders();
    expect(orders.map((o) => [o.status, o.attempts])).toEqual([
      ["queued", 0],
      ["queued", 0],
    ]);
    expect((await t.ledger.listRuns()).map((r) => r.status)).toEqual(["failed"]);
  });
});

describe("each order's agent", () => {
  it("runs an order with the driver and model it names, and another with the factory's", async () => {
    const repo = await makeDemoRepo();
    cleanups.push(repo.cleanup);
    const tasks: { driver: string; model: string }[] = [];
    const t = await startTestLine({
      repo: repo.dir,
      policy: demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }),
      settings: { concurrency: 1 },
      sandbox: "unsandboxed",
      drivers: { builtin: namedAgent("builtin", tasks), codex: namedAgent("codex", tasks) },
    });
    cleanups.push(t.close);
    const [first, second] = demoOrders;
    const [own, plain] = await t.ledger.addOrders([
      { title: first!.title, spec: first!.spec, driver: "codex", model: "sim-fast", priority: 1 },
      { title: second!.title, spec: second!.spec },
    ]);

    await t.line.run();

    expect((await t.ledger.listOrders()).map((o) => o.status)).toEqual(["landed", "landed"]);
    expect(tasks).toEqual([
      { driver: "codex", model: "sim-fast" },
      { driver: "builtin", model: "sim-demo" },
    ]);
    const [ownRun] = await t.ledger.listRuns(own!.id);
    const [plainRun] = await t.ledger.listRuns(plain!.id);
    expect([ownRun?.agent, ownRun?.model]).toEqual(["codex", "sim-fast"]);
    expect([plainRun?.agent, plainRun?.model]).toEqual(["builtin", "sim-demo"]);
    // The gateway metered each run's requests under the model it asked for.
    const models = async (runId: number) =>
      new Set((await t.ledger.metering.listModelRequests(runId)).map((r) => r.model));
    expect(await models(ownRun!.id)).toEqual(new Set(["sim-fast"]));
    expect(await models(plainRun!.id)).toEqual(new Set(["sim-demo"]));
    expect(t.progress.find((p) => p.orderId === own!.id && p.state === "agent")?.message).toBe(
      "codex agent working with sim-fast",
    );
  });

  it("fails an order whose driver cannot be had, saying which, and carries on", async () => {
    const repo = await makeDemoRepo();
    cleanups.push(repo.cleanup);
    const t = await startTestLine({
      repo: repo.dir,
      policy: demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }),
      sandbox: "unsandboxed",
    });
    cleanups.push(t.close);
    const [odd] = await t.ledger.addOrders([{ title: "odd agent", driver: "aider" }]);
    const [good] = await addDemoOrders(t, 1);

    await t.line.run();

    const after = await t.ledger.getOrder(odd!.id);
    expect([after?.status, after?.attempts]).toEqual(["failed", 1]);
    expect(after?.failure_reason).toBe('cannot start agent driver "aider": no test driver "aider"');
    expect((await t.ledger.getOrder(good!.id))?.status).toBe("landed");
  });
});

describe("a run whose model request failed outside the agent's control", () => {
  async function setUpFailing(
    failure: ModelFailure,
    agent: AgentDriver,
    settings: Parameters<typeof startTestLine>[0]["settings"] = {},
  ) {
    const repo = await makeDemoRepo();
    cleanups.push(repo.cleanup);
    const t = await startTestLine({
      repo: repo.dir,
      policy: demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }),
      sandbox: "unsandboxed",
      settings: { driver: "claude-code", ...settings },
      drivers: { "claude-code": agent },
      models: failingModels(failure),
    });
    cleanups.push(t.close);
    return t;
  }

  it("when every run would fail alike, requeues the order without using an attempt and stops the line, saying why", async () => {
    const agent = failingAgent([
      {
        reason: "error",
        summary: "There's an issue with the selected model (claude-x). Run /model to pick another.",
      },
    ]);
    const t = await setUpFailing(
      { status: 401, from: "provider", message: "invalid x-api-key", blocking: true },
      agent,
      { concurrency: 1, maxAttempts: 2 },
    );
    await t.ledger.addOrders([{ title: "first" }, { title: "second" }]);

    await t.line.run();

    const cause = "the model provider refused the request (401): invalid x-api-key";
    expect(t.line.haltedBecause).toBe(cause);
    // One run, then no more: nobody burns attempts on a broken provider.
    expect(agent.tasks).toHaveLength(1);
    const orders = await t.ledger.listOrders();
    expect(orders.map((o) => [o.status, o.attempts, o.feedback])).toEqual([
      ["queued", 0, null],
      ["queued", 0, null],
    ]);
    const runs = await t.ledger.listRuns();
    expect(runs.map((r) => r.status)).toEqual(["failed"]);
    expect(runs[0]?.outcome_reason).toBe(
      `${cause} (the agent said: There's an issue with the selected model (claude-x). Run /model to pick another.)`,
    );
    expect(await t.ledger.listDefects()).toEqual([]);
    expect(t.progress.at(-1)).toMatchObject({ state: "queued", message: runs[0]?.outcome_reason });
  });

  it("when it was a one-off, is an ordinary failed attempt whose reason and feedback are the gateway's", async () => {
    // The first attempt ends in an error, the second "completed" with the error as its answer
    // and no change: both are the provider's failure, not the agent's.
    const agent = failingAgent([
      { reason: "error", summary: "API Error: 529 overloaded" },
      { reason: "completed", summary: "" },
    ]);
    const t = await setUpFailing(
      { status: 529, from: "provider", message: "Overloaded", blocking: false },
      agent,
      { maxAttempts: 2 },
    );
    const [order] = await t.ledger.addOrders([{ title: "unlucky" }]);

    await t.line.run();

    const cause = "the model provider failed (529): Overloaded";
    expect(t.line.haltedBecause).toBeUndefined();
    expect(agent.tasks).toHaveLength(2);
    const after = await t.ledger.getOrder(order!.id);
    expect([after?.status, after?.attempts]).toEqual(["failed", 2]);
    expect(after?.failure_reason).toBe(`${cause} (attempt 2 of 2)`);
    const runs = await t.ledger.listRuns(order!.id);
    expect(runs.map((r) => [r.status, r.outcome_reason])).toEqual([
      ["failed", `${cause} (the agent said: API Error: 529 overloaded)`],
      ["failed", `${cause} (attempt 2 of 2)`],
    ]);
    // The retry was told why its predecessor stopped.
    expect(agent.tasks[1]?.prompt).toContain(cause);
    expect((await t.ledger.listDefects()).map((d) => d.kind)).toEqual(["order_failed"]);
  });

  it("is described in the gateway's words, its status said once", () => {
    const failure = (status: number, from: "gateway" | "provider", message: string) =>
      describeModelFailure({ status, from, message, blocking: true });
    expect(failure(401, "provider", "401: invalid x-api-key")).toBe(
      "the model provider refused the request (401): invalid x-api-key",
    );
    expect(failure(502, "provider", "connect ECONNREFUSED 127.0.0.1:9")).toBe(
      "the model provider failed (502): connect ECONNREFUSED 127.0.0.1:9",
    );
    expect(failure(400, "gateway", "no price is known for model claude-x")).toBe(
      "the gateway refused the request (400): no price is known for model claude-x",
    );
  });

  it("the gateway's own refusal is named as such", async () => {
    const agent = failingAgent([{ reason: "error", summary: "model error" }]);
    const t = await setUpFailing(
      {
        status: 404,
        from: "gateway",
        message: 'no provider serves model "claude-x"',
        blocking: true,
      },
      agent,
    );
    await t.ledger.addOrders([{ title: "needs claude-x", model: "claude-x" }]);

    await t.line.run();

    expect(t.line.haltedBecause).toBe(
      'the gateway refused the request (404): no provider serves model "claude-x"',
    );
    expect(agent.tasks[0]?.model).toBe("claude-x");
    expect((await t.ledger.listOrders()).map((o) => [o.status, o.attempts])).toEqual([
      ["queued", 0],
    ]);
  });
});
