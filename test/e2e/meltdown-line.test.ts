import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_WATCHDOG, type WatchdogLimits } from "../../src/line/index.ts";
import { demoOrders, demoPolicy, type MeltdownScript, withMeltdowns } from "../../src/sim/index.ts";
import { landedOrderTrailers, makeDemoRepo, startTestLine, testsPassAt } from "../support/line.ts";

/**
 * The watchdog's proof on the real line (built-in agent, bubblewrap, the simulator as the model):
 * each scripted meltdown is caught within its configured limit and recorded as a defect, while a
 * healthy order beside it lands.
 */

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

beforeAll(async () => {
  const { execFileSync } = await import("node:child_process");
  execFileSync("sh", ["scripts/ensure-bubblewrap.sh"], { stdio: "ignore" });
});

const marker = (kind: MeltdownScript) => `[meltdown:${kind}]`;

async function lineWith(
  kinds: MeltdownScript[],
  watchdog: Partial<WatchdogLimits>,
  attempts: Partial<Record<MeltdownScript, number>> = {},
) {
  const repo = await makeDemoRepo();
  cleanups.push(repo.cleanup);
  const markers = Object.fromEntries(kinds.map((k) => [marker(k), k]));
  const t = await startTestLine({
    repo: repo.dir,
    policy: withMeltdowns(demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }), { markers }),
    settings: {
      concurrency: 2,
      maxAttempts: 1,
      // A command counts as no activity: the stall limit must outlast the longest command.
      commandTimeoutMs: 25_000,
      watchdog: { ...DEFAULT_WATCHDOG, checkIntervalMs: 100, ...watchdog },
    },
  });
  cleanups.push(t.close);
  // The healthy order first, then one order per meltdown (each a demo order, marked).
  const healthy = demoOrders[0]!;
  const orders = await t.ledger.addOrders([
    { title: healthy.title, spec: healthy.spec, acceptance: healthy.acceptance },
    ...kinds.map((kind, i) => {
      const o = demoOrders[i + 1]!;
      return {
        title: `${o.title} ${marker(kind)}`,
        spec: o.spec,
        acceptance: o.acceptance,
        ...(attempts[kind] ? { maxAttempts: attempts[kind] } : {}),
      };
    }),
  ]);
  return { ...t, repo: repo.dir, orders };
}

describe("meltdowns on the line", () => {
  it("catches a stall, a loop, a runaway and escape attempts; the healthy order lands", async () => {
    const kinds: MeltdownScript[] = ["stall", "loop", "runaway", "escape"];
    const t = await lineWith(kinds, {
      stallMs: 30_000,
      loopRepeats: 4,
      maxTokens: 40_000,
      escapeLimit: 3,
    });

    await t.line.run();

    const [healthy, ...meltdowns] = await Promise.all(t.orders.map((o) => t.ledger.getOrder(o.id)));
    expect(healthy?.status, healthy?.failure_reason ?? "").toBe("landed");
    expect(landedOrderTrailers(t.repo)).toEqual([`WO-${healthy!.id}`]);
    expect(testsPassAt(t.repo, "main")).toBe(true);
    const defects = await t.ledger.listDefects();
    for (const [i, kind] of kinds.entries()) {
      const order = meltdowns[i]!;
      expect(order.status, kind).toBe("failed");
      expect(order.failure_reason, kind).toMatch(/stopped by the watchdog/);
      const [run] = await t.ledger.listRuns(order.id);
      const defect = defects.find((d) => d.run_id === run!.id && d.kind === `meltdown_${kind}`);
      expect(defect, `${kind}: ${JSON.stringify(defects)}`).toBeDefined();
      expect(defect!.order_id).toBe(order.id);
    }
    // Caught within the limits: a loop of no more than 4 calls, a runaway stopped near 40k tokens.
    const loopRun = (await t.ledger.listRuns(meltdowns[1]!.id))[0]!;
    const calls = (await t.ledger.listEvents(loopRun.id)).filter((e) => e.kind === "tool_call");
    expect(calls.length).toBeLessThanOrEqual(4);
    const runawayRun = (await t.ledger.listRuns(meltdowns[2]!.id))[0]!;
    expect(runawayRun.input_tokens + runawayRun.output_tokens).toBeGreaterThan(40_000);
    const escapeRun = (await t.ledger.listRuns(meltdowns[3]!.id))[0]!;
    const violations = (await t.ledger.listEvents(escapeRun.id)).filter(
      (e) => e.kind === "sandbox_violation",
    );
    expect(violations.length).toBe(3);
  });

  it("gives a looping order a fresh run told what went wrong, and floods are stopped", async () => {
    const t = await lineWith(
      ["loop", "flood"],
      { loopRepeats: 4, maxOutputBytes: 200_000 },
      { loop: 2 },
    );
    await t.line.run();

    const loop = await t.ledger.getOrder(t.orders[1]!.id);
    const flood = await t.ledger.getOrder(t.orders[2]!.id);
    expect((await t.ledger.getOrder(t.orders[0]!.id))?.status).toBe("landed");
    expect(loop?.attempts).toBe(2);
    expect(loop?.feedback).toMatch(/same tool call 4 times in a row/);
    expect(flood?.failure_reason).toMatch(/stopped by the watchdog: .* of output/);
    const kinds = (await t.ledger.listDefects()).map((d) => d.kind).sort();
    expect(kinds).toEqual(expect.arrayContaining(["meltdown_flood", "meltdown_loop"]));
  });

  it("pauses the line in an upstream outage, and lands the rest once a person resumes it", async () => {
    const repo = await makeDemoRepo();
    cleanups.push(repo.cleanup);
    let outage = true;
    const demo = demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 });
    const t = await startTestLine({
      repo: repo.dir,
      // Every model request fails with 503 until the provider comes back.
      policy: (request, ctx) =>
        outage ? { fault: { kind: "server_error", status: 503 } } : demo(request, ctx),
      settings: {
        concurrency: 1,
        maxAttempts: 1,
        circuitBreaker: { enabled: true, window: 4, failures: 2, coolDownMs: 0 },
      },
    });
    cleanups.push(t.close);
    const orders = await t.ledger.addOrders(
      demoOrders
        .slice(0, 4)
        .map((o) => ({ title: o.title, spec: o.spec, acceptance: o.acceptance })),
    );

    await t.line.run();

    const paused = await t.line.pausedBecause();
    expect(paused).toMatch(/^2 of the last 2 runs failed for reasons outside their orders/);
    expect(paused).toMatch(/model provider failed \(503\)/);
    const state = await t.ledger.line.state();
    expect(state.changed_by).toMatch(/^circuit breaker/);
    const statuses = async () =>
      (await Promise.all(orders.map((o) => t.ledger.getOrder(o.id)))).map((o) => o?.status);
    // Two orders burnt their attempt; the line stopped before burning the others.
    expect(await statuses()).toEqual(["failed", "failed", "queued", "queued"]);

    outage = false;
    await t.line.run();
    expect(await statuses()).toEqual(["failed", "failed", "queued", "queued"]);
    expect(await t.ledger.line.resumeIfPaused("cli:test")).toBe(true);
    await t.line.run();
    expect(await statuses()).toEqual(["failed", "failed", "landed", "landed"]);
    expect(await t.line.pausedBecause()).toBeUndefined();
  });
});
