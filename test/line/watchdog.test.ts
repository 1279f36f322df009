import { afterEach, describe, expect, it } from "vitest";
import type { AgentEvent } from "../../src/agents/index.ts";
import type { Ledger } from "../../src/ledger/index.ts";
import { DEFAULT_WATCHDOG, type WatchdogLimits } from "../../src/line/index.ts";
import { Watchdog } from "../../src/line/watchdog.ts";
import { openTestLedger } from "../support/ledgers.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function watched(limits: Partial<WatchdogLimits> = {}) {
  const { ledger, dispose } = await openTestLedger({ kind: "memory" });
  cleanups.push(dispose);
  const [order] = await ledger.addOrders([{ title: "t", spec: "s" }]);
  const claim = await ledger.claimNext({
    workerId: "w",
    leaseMs: 60_000,
    agent: "builtin",
    model: "m",
  });
  const recorded: AgentEvent[] = [];
  const line = new AbortController();
  const watchdog = new Watchdog(
    ledger,
    { runId: claim!.run.id, orderId: order!.id },
    (e) => recorded.push(e),
    { ...DEFAULT_WATCHDOG, ...limits },
    line.signal,
  );
  cleanups.push(() => watchdog.close());
  return { ledger, watchdog, recorded, line, runId: claim!.run.id, orderId: order!.id };
}

function stopped(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

async function defects(ledger: Ledger) {
  return (await ledger.listDefects()).map((d) => ({ kind: d.kind, run: d.run_id }));
}

const call = (id: number, input: unknown): AgentEvent => ({
  kind: "tool_call",
  callId: `c${id}`,
  tool: "run_command",
  input,
});

describe("the watchdog", () => {
  it("stops a run that makes the same tool call over and over, with the calls as evidence", async () => {
    const t = await watched({ loopRepeats: 4 });
    for (let i = 0; i < 3; i++) t.watchdog.record(call(i, { command: "npm test" }));
    expect(t.watchdog.signal.aborted).toBe(false);
    t.watchdog.record(call(3, { command: "npm test" }));
    expect(t.watchdog.signal.aborted).toBe(true);
    await t.watchdog.close();
    expect(t.watchdog.meltdown?.kind).toBe("loop");
    expect(t.watchdog.meltdown?.feedback).toMatch(/same tool call 4 times in a row/);
    expect(t.recorded).toHaveLength(4);
    const [defect] = await t.ledger.listDefects();
    expect(defect?.kind).toBe("meltdown_loop");
    expect(defect?.run_id).toBe(t.runId);
    expect(defect?.summary).toMatch(/run_command \{"command":"npm test"\}/);
    expect(JSON.stringify(defect?.evidence)).toMatch(/recentEvents/);
  });

  it("lets varied work through, and catches the same failing edit made again and again", async () => {
    const t = await watched({ loopRepeats: 3 });
    // edit, test, edit, test: the calls repeat, but never in a row and never failing.
    for (let i = 0; i < 10; i++) {
      t.watchdog.record(call(i, i % 2 ? { command: "npm test" } : { path: "a.ts", n: i }));
    }
    expect(t.watchdog.signal.aborted).toBe(false);
    const edit = { path: "a.ts", old: "x", new: "y" };
    for (let i = 0; i < 3; i++) {
      t.watchdog.record(call(100 + 2 * i, edit));
      t.watchdog.record({
        kind: "tool_result",
        callId: `c${100 + 2 * i}`,
        tool: "run_command",
        output: "no match for old text",
        isError: true,
      });
      t.watchdog.record(call(101 + 2 * i, { path: "a.ts" }));
    }
    expect(t.watchdog.signal.aborted).toBe(true);
    await t.watchdog.close();
    expect(t.watchdog.meltdown?.summary).toMatch(/same failing tool call 3 times/);
    expect(await defects(t.ledger)).toEqual([{ kind: "meltdown_loop", run: t.runId }]);
  });

  it("stops a run with no event for its stall limit", async () => {
    const t = await watched({ stallMs: 200 });
    t.watchdog.record({ kind: "message", text: "thinking" });
    await stopped(t.watchdog.signal);
    await t.watchdog.close();
    expect(t.watchdog.meltdown?.kind).toBe("stall");
    expect(await defects(t.ledger)).toEqual([{ kind: "meltdown_stall", run: t.runId }]);
  });

  it("stops a run whose metered tokens or cost pass the limit", async () => {
    const t = await watched({ maxUsd: 0.5, checkIntervalMs: 50 });
    await t.ledger.metering.recordModelRequests([meteredRow(t, "r1", 0.2)]);
    await t.ledger.metering.recordModelRequests([meteredRow(t, "r2", 0.4)]);
    await stopped(t.watchdog.signal);
    await t.watchdog.close();
    expect(t.watchdog.meltdown?.kind).toBe("runaway");
    expect(t.watchdog.meltdown?.summary).toMatch(/cost \$0\.6000 \(limit \$0\.5\)/);
    expect(t.watchdog.meltdown?.evidence).toMatchObject({ costUsd: expect.closeTo(0.6, 6) });
    expect(await defects(t.ledger)).toEqual([{ kind: "meltdown_runaway", run: t.runId }]);
  });

  it("reads the spend once more when the agent returns before the next check", async () => {
    const t = await watched({ maxTokens: 1_000, checkIntervalMs: 600_000 });
    await t.ledger.metering.recordModelRequests([meteredRow(t, "r1", 0.01)]);
    await t.watchdog.close();
    expect(t.watchdog.meltdown?.summary).toMatch(/used 1500 tokens \(limit 1000\)/);
  });

  it("stops a run that floods its output or keeps hitting the sandbox", async () => {
    const flood = await watched({ maxOutputBytes: 1_000 });
    flood.watchdog.record({ kind: "message", text: "x".repeat(1_001) });
    await flood.watchdog.close();
    expect(flood.watchdog.meltdown?.kind).toBe("flood");
    // The evidence keeps the event but not the flood itself.
    expect(JSON.stringify(flood.watchdog.meltdown?.evidence).length).toBeLessThan(1_000);

    const walls = await watched({ escapeLimit: 2 });
    const violation: AgentEvent = {
      kind: "sandbox_violation",
      violation: "read_outside",
      detail: "~/.ssh/id_rsa",
    };
    walls.watchdog.record(violation);
    expect(walls.watchdog.signal.aborted).toBe(false);
    walls.watchdog.record(violation);
    await walls.watchdog.close();
    expect(walls.watchdog.meltdown?.kind).toBe("escape");
    expect(await defects(walls.ledger)).toEqual([{ kind: "meltdown_escape", run: walls.runId }]);
  });

  it("ends a run at its first limit hit, naming the limit and the command", async () => {
    const t = await watched({ escapeLimit: 100 });
    t.watchdog.record({
      kind: "sandbox_violation",
      violation: "disk_limit",
      detail: "the worktree grew past 2 GiB",
      command: "dd if=/dev/zero of=big bs=1M",
    });
    await t.watchdog.close();
    expect(t.watchdog.signal.aborted).toBe(true);
    expect(t.watchdog.meltdown).toMatchObject({
      kind: "limit",
      summary: expect.stringMatching(/disk limit running `dd if=\/dev\/zero/),
      feedback: expect.stringContaining("disk limit"),
    });
    expect(await defects(t.ledger)).toEqual([{ kind: "meltdown_limit", run: t.runId }]);
  });

  it("leaves a run the line stops alone: no meltdown, no defect", async () => {
    const t = await watched({ stallMs: 100 });
    t.line.abort();
    expect(t.watchdog.signal.aborted).toBe(true);
    await t.watchdog.close();
    expect(t.watchdog.meltdown).toBeUndefined();
    expect(await t.ledger.listDefects()).toEqual([]);
  });
});

function meteredRow(t: { runId: number; orderId: number }, id: string, cost: number) {
  return {
    request_id: id,
    run_id: t.runId,
    order_id: t.orderId,
    protocol: "openai-chat",
    model: "m",
    status: 200,
    stream: true,
    input_tokens: 1_000,
    output_tokens: 500,
    cached_input_tokens: 0,
    cost_usd: cost,
    usage_estimated: false,
    latency_ms: 10,
    attempts: 1,
    error: null,
  };
}
