import { sql } from "kysely";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { RunEnding } from "../../src/ledger/index.ts";
import { outsideTheOrder } from "../../src/line/circuit-breaker.ts";
import { CircuitBreaker, type CircuitBreakerSettings } from "../../src/line/index.ts";
import { openTestLedger } from "../support/ledgers.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function breaker(settings: Partial<CircuitBreakerSettings> = {}) {
  const { ledger, dispose } = await openTestLedger({ kind: "memory" });
  cleanups.push(dispose);
  const b = new CircuitBreaker(ledger, pino({ level: "silent" }), "w1", {
    enabled: true,
    window: 4,
    failures: 3,
    coolDownMs: 0,
    ...settings,
  });
  return { ledger, breaker: b };
}

const outage = (): RunEnding =>
  outsideTheOrder({
    outcome: "retry",
    runStatus: "failed",
    reason: "the model provider failed (503): overloaded",
    feedback: "start again",
  });
const rejected = (): RunEnding => ({
  outcome: "retry",
  runStatus: "rejected",
  reason: "test gate failed (exit 1)",
  feedback: "fix it",
});
const landed = (): RunEnding => ({
  outcome: "landed",
  reason: "landed",
  previousMain: "a",
  landedCommit: "b",
});

describe("the circuit breaker", () => {
  it("pauses the line in the ledger when N of the last M runs failed outside their orders", async () => {
    const { ledger, breaker: b } = await breaker();
    // The order's own failures do not count; nor do outside failures that left the window.
    await b.settled(1, outage());
    await b.settled(2, rejected());
    await b.settled(3, landed());
    await b.settled(4, rejected());
    await b.settled(5, outage());
    await b.settled(6, outage());
    expect(await b.allowance()).toBe("all");
    await b.settled(7, outage());

    const state = await ledger.line.state();
    expect(state.paused).toBe(true);
    expect(state.reason).toMatch(
      /^3 of the last 4 runs failed for reasons outside their orders \(latest: the model provider failed \(503\)/,
    );
    expect(state.changed_by).toBe("circuit breaker (w1)");
    expect(await b.allowance()).toBe("none");
    expect(await b.pausedBecause()).toBe(state.reason);

    // Without a cool-down only a person resumes it.
    expect(await ledger.line.resumeIfPaused("cli:test")).toBe(true);
    expect(await b.allowance()).toBe("all");
    expect(await ledger.line.resumeIfPaused("cli:test")).toBe(false);
  });

  it("lets one probe run through after the cool-down; it resumes the line or pauses it again", async () => {
    const { ledger, breaker: b } = await breaker({ coolDownMs: 60_000, failures: 1, window: 1 });
    await b.settled(1, outage());
    expect(await b.allowance()).toBe("none");
    const anHourAgo = () =>
      sql`update line_state set changed_at = now() - interval '1 hour'`.execute(ledger.db);
    await anHourAgo();
    expect(await b.allowance()).toBe("probe");
    b.probing(2);
    expect(await b.allowance()).toBe("none");

    await b.settled(2, outage());
    const again = await ledger.line.state();
    expect(again.paused).toBe(true);
    expect(again.reason).toMatch(/^the probe run 2 failed as well/);
    expect(await b.allowance()).toBe("none");

    await anHourAgo();
    expect(await b.allowance()).toBe("probe");
    b.probing(3);
    // A failure of the order's own still shows the outside cause is gone.
    await b.settled(3, rejected());
    expect((await ledger.line.state()).paused).toBe(false);
    expect(await b.allowance()).toBe("all");
  });

  it("counts nothing when disabled, but still honours a pause a person made", async () => {
    const { ledger, breaker: b } = await breaker({ enabled: false });
    for (let i = 1; i <= 5; i++) await b.settled(i, outage());
    expect(await b.allowance()).toBe("all");
    expect(await ledger.line.pauseUnlessPaused("cli:alice", "maintenance")).toBe(true);
    expect(await ledger.line.pauseUnlessPaused("cli:bob", "again")).toBe(false);
    expect(await b.pausedBecause()).toBe("maintenance");
    expect(await b.allowance()).toBe("none");
  });
});
