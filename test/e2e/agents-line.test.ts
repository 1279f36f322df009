import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { claudeCodeDriver } from "../../src/agents/index.ts";
import { createTestGate } from "../../src/gates/index.ts";
import { bundledPrices, Gateway } from "../../src/gateway/index.ts";
import { openLedger } from "../../src/ledger/index.ts";
import { Line } from "../../src/line/index.ts";
import type { ChatRequest } from "../../src/protocols/index.ts";
import { BubblewrapBackend } from "../../src/sandbox/index.ts";
import {
  demoOrders,
  demoPolicy,
  messagesText,
  type Policy,
  type PolicyReply,
  startSimulator,
} from "../../src/sim/index.ts";
import { Workspaces } from "../../src/workspace/index.ts";
import { OutsideTrap } from "../support/agents.ts";
import { landedOrderTrailers, mainHistory, makeDemoRepo } from "../support/line.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

/**
 * The demo's model, speaking to Claude Code: the demo policy decides what to do (look around,
 * write the order's files, run the tests, report) in the built-in agent's tool names, and this
 * turns each call into Claude Code's Bash tool. Files are written from base64 so every byte lands.
 */
function asClaudeCode(inner: Policy): Policy {
  return async (request: ChatRequest, ctx) => {
    const reply = await inner(request, ctx);
    if (!reply.toolCalls) return reply;
    const calls = reply.toolCalls.map((call) => {
      const args = (typeof call.arguments === "string" ? {} : call.arguments) as Record<
        string,
        string
      >;
      switch (call.name) {
        case "list_files":
          return bash("git ls-files", "list the files");
        case "write_file": {
          const file = JSON.stringify(args.path);
          const data = Buffer.from(args.content ?? "").toString("base64");
          return bash(
            `mkdir -p "$(dirname ${file})" && node -e 'require("fs").writeFileSync(process.argv[1], Buffer.from(process.argv[2], "base64"))' ${file} ${data}`,
            `write ${args.path}`,
          );
        }
        case "run_command":
          return bash(args.command ?? "true", "run a command");
        default:
          throw new Error(`the demo policy used a tool this test does not translate: ${call.name}`);
      }
    });
    return { ...reply, toolCalls: calls } satisfies PolicyReply;
  };
}

const bash = (command: string, description: string) => ({
  name: "Bash",
  arguments: { command, description },
});

describe("the line with Claude Code as its agent", () => {
  it("lands a demo order: Claude Code works it inside the run's sandbox through the gateway, the gates pass, main moves", async () => {
    const repo = await makeDemoRepo();
    cleanups.push(repo.cleanup);
    const ledger = await openLedger({ kind: "memory" });
    cleanups.push(() => ledger.close());
    const requests: ChatRequest[] = [];
    const sim = await startSimulator({
      policy: asClaudeCode((request, ctx) => {
        requests.push(request);
        return demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 })(request, ctx);
      }),
    });
    cleanups.push(() => sim.close());
    const upstream = { baseURL: sim.rootUrl, apiKey: "sim", auth: "bearer" as const };
    const gateway = new Gateway({
      ledger,
      logger: pino({ level: "silent" }),
      prices: bundledPrices,
      limits: {},
      upstreams: { "anthropic-messages": upstream },
    });
    await gateway.listen();
    cleanups.push(() => gateway.close());
    const trap = new OutsideTrap();
    const trapUrl = await trap.start();
    cleanups.push(() => trap.close());

    const workspaces = new Workspaces({
      repoPath: repo.dir,
      branch: "main",
      rootDir: path.join(repo.dir, ".nightshift", "worktrees"),
    });
    const driver = claudeCodeDriver({
      homesDir: path.join(repo.dir, ".nightshift", "agent-homes"),
      env: trap.env(trapUrl),
      wallTimeMs: 120_000,
    });
    await driver.preflight();
    const line = new Line(
      {
        ledger,
        workspaces,
        drivers: { get: () => driver },
        gates: [createTestGate({ command: "npm test --silent", timeoutMs: 120_000 })],
        models: gateway,
        // Every run in a bubblewrap sandbox, as `nightshift run` does: Claude Code inside it.
        sandbox: new BubblewrapBackend(),
        logger: pino({ level: "silent" }),
        workerId: "test-worker",
        soleWorker: true,
      },
      {
        concurrency: 1,
        maxAttempts: 1,
        pollIntervalMs: 100,
        leaseMs: 60_000,
        driver: "claude-code",
        model: "sim-demo",
        maxSteps: 10,
        maxTokensPerRun: 10_000_000,
        commandTimeoutMs: 60_000,
        testCommand: "npm test --silent",
      },
    );
    const order = demoOrders[0]!;
    const before = mainHistory(repo.dir);
    await ledger.addOrders([
      { title: order.title, spec: order.spec, acceptance: order.acceptance },
    ]);

    await line.run();

    const [landed] = await ledger.listOrders();
    expect(landed).toMatchObject({ status: "landed", attempts: 1 });
    expect(mainHistory(repo.dir)).toHaveLength(before.length + 1);
    expect(landedOrderTrailers(repo.dir)).toEqual([`WO-${landed!.id}`]);
    const [run] = await ledger.listRuns();
    expect(run).toMatchObject({ agent: "claude-code", status: "landed" });

    // The run's events are Claude Code's, normalized and recorded by the line.
    const events = await ledger.listEvents(run!.id);
    const kinds = new Set(events.map((e) => e.kind));
    for (const kind of ["tool_call", "tool_result", "message", "usage", "file_change", "done"]) {
      expect(kinds.has(kind), `a ${kind} event`).toBe(true);
    }
    const changed = events
      .filter((e) => e.kind === "file_change")
      .map((e) => (e.payload as { path: string }).path)
      .sort();
    expect(changed).toEqual(Object.keys(order.files).sort());
    // Inside the sandbox, and a well-behaved run: no warning, no attempt to cross a wall.
    // (The sandbox's note of the limits it enforced is not a warning.)
    const warnings = events.filter(
      (e) => e.kind.startsWith("sandbox_") && e.kind !== "sandbox_limits",
    );
    expect(warnings).toEqual([]);

    // Metered once per request the simulator served, on this run.
    const rows = await ledger.metering.listModelRequests(run!.id);
    expect(rows).toHaveLength(sim.stats.requests);
    expect(rows.reduce((s, r) => s + r.input_tokens, 0)).toBe(sim.stats.promptTokens);
    expect(rows.reduce((s, r) => s + r.output_tokens, 0)).toBe(sim.stats.completionTokens);
    expect(messagesText(requests[0]!, ["user"])).toContain(order.title);
    expect(trap.attempts).toEqual([]);
  });
});
