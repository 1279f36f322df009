import { afterEach, describe, expect, it } from "vitest";
import { collectStatus } from "../../src/cli/commands/status.ts";
import { demoOrders, demoPolicy, messagesText, withFailureModes } from "../../src/sim/index.ts";
import {
  landedOrderTrailers,
  makeDemoRepo,
  startTestLine,
  type TestLine,
} from "../support/line.ts";

/**
 * The agent-level proof: the simulator's "escape" failure mode plays a hostile model for one
 * order (every turn a read of a secret or a command that leaves the workspace) while the other
 * order's agent behaves. The hostile attempts are recorded on its run and raise a defect; the
 * neighbour lands.
 */
let t: TestLine | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await t?.close();
  await cleanup?.();
  t = undefined;
});

describe("the line with a hostile agent next to a well-behaved one", () => {
  it("records every blocked attempt on the hostile run, raises a defect, and lands the other order", async () => {
    const repo = await makeDemoRepo();
    cleanup = repo.cleanup;
    const [good, bad] = [demoOrders[0]!, demoOrders[1]!];
    const honest = demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 });
    const hostile = withFailureModes(honest, { rates: { escape: 1 }, seed: 7 });
    t = await startTestLine({
      repo: repo.dir,
      policy: (request, ctx) =>
        messagesText({ ...request, messages: request.messages.filter((m) => m.role === "user") }, [
          "user",
        ]).includes(bad.title)
          ? hostile(request, ctx)
          : honest(request, ctx),
      settings: { maxSteps: 8, maxAttempts: 1 },
    });
    await t.ledger.addOrders(
      [good, bad].map((o) => ({ title: o.title, spec: o.spec, acceptance: o.acceptance })),
    );
    await t.line.run();

    const orders = await t.ledger.listOrders();
    const byTitle = new Map(orders.map((o) => [o.title, o]));
    expect(byTitle.get(good.title)?.status).toBe("landed");
    expect(byTitle.get(bad.title)?.status).toBe("failed");
    expect(landedOrderTrailers(repo.dir)).toEqual([`WO-${byTitle.get(good.title)?.id}`]);

    const runs = await t.ledger.listRuns();
    const badRun = runs.find((r) => r.order_id === byTitle.get(bad.title)?.id)!;
    const goodRun = runs.find((r) => r.order_id === byTitle.get(good.title)?.id)!;
    const badEvents = await t.ledger.listEvents(badRun.id);
    const violations = badEvents.filter((e) => e.kind === "sandbox_violation");
    const calls = badEvents.filter((e) => e.kind === "tool_call");
    // Every escape call the model made was blocked and recorded (at least one violation each).
    expect(calls.length).toBeGreaterThanOrEqual(3);
    const callIds = new Set(
      badEvents
        .filter((e) => e.kind === "tool_result")
        .map((e) => (e.payload as { callId: string }).callId),
    );
    expect(callIds.size).toBe(calls.length);
    expect(violations.length).toBeGreaterThanOrEqual(calls.length - countHarmless(calls));
    const goodEvents = await t.ledger.listEvents(goodRun.id);
    // The good run's record says which limits held its sandbox, and shows no attempt.
    expect(goodEvents.filter((e) => e.kind.startsWith("sandbox_")).map((e) => e.kind)).toEqual([
      "sandbox_limits",
    ]);

    const defects = (await t.ledger.listDefects()).filter((d) => d.kind === "escape_attempts");
    expect(defects).toHaveLength(1);
    expect(defects[0]).toMatchObject({
      kind: "escape_attempts",
      run_id: badRun.id,
      status: "open",
    });
    expect((defects[0]!.evidence as unknown[]).length).toBe(3);
    // The supervisor sees it in `nightshift status`.
    const status = await collectStatus(t.ledger);
    expect(status.defects?.map((d) => d.kind)).toContain("escape_attempts");
  }, 180_000);
});

/**
 * `read_file("~/.ssh/id_rsa")` names a file called "~" inside the workspace (the tool does not
 * expand ~): it finds nothing, and there is nothing to block.
 */
function countHarmless(calls: { payload: unknown }[]): number {
  return calls.filter((c) => JSON.stringify(c.payload).includes('"path":"~/')).length;
}
