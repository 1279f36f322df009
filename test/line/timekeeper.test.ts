import { writeFile } from "node:fs/promises";
import path from "node:path";
import { sql } from "kysely";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { WorkOrder } from "../../src/ledger/index.ts";
import type { LineProgress } from "../../src/line/index.ts";
import { demoOrders, demoPolicy } from "../../src/sim/index.ts";
import { ledgerBackends } from "../support/ledgers.ts";
import {
  landedOrderTrailers,
  makeDemoRepo,
  startTestLine,
  type TestLine,
} from "../support/line.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

const goodPolicy = () => demoPolicy({ brokenPatchRate: 0, giveUpRate: 0, fixOnFeedbackRate: 1 });

/** Resolves on the first progress report `matches` accepts. */
function progressWhere(t: TestLine, matches: (p: LineProgress) => boolean): Promise<LineProgress> {
  return new Promise((resolve) => {
    t.line.onProgress((p) => {
      if (matches(p)) resolve(p);
    });
  });
}

/** A logger that tells when the line goes idle (its debug line before an idle wait). */
function idleSignal() {
  let idle: (() => void) | undefined;
  const logger = pino(
    { level: "debug" },
    {
      write(line: string) {
        if (line.includes("idle: waiting")) idle?.();
      },
    },
  );
  return {
    logger,
    next: () =>
      new Promise<void>((resolve) => {
        idle = resolve;
      }),
  };
}

describe.each(ledgerBackends)("a live line on $name", ({ location }) => {
  it("takes back a dead worker's runs once their leases expire, while it works: none lost, none run twice", async () => {
    const repo = await makeDemoRepo();
    cleanups.push(repo.cleanup);
    const t = await startTestLine({
      repo: repo.dir,
      policy: goodPolicy(),
      ledger: location(),
      workerId: "live-worker",
      soleWorker: false,
      settings: { pollIntervalMs: 100, leaseMs: 60_000 },
    });
    cleanups.push(t.close);
    const orders = await t.ledger.addOrders(
      demoOrders.slice(0, 3).map((o) => ({ title: o.title, spec: o.spec })),
    );
    const [queued, waiting, ours] = orders as [WorkOrder, WorkOrder, WorkOrder];
    // A worker (another process, killed) holds the first two orders under live leases: one run
    // had its gate-passed candidate in the merge queue, the other was still with its agent.
    const claim = () =>
      t.ledger.claimNext({
        workerId: "dead-worker",
        leaseMs: 60_000,
        agent: "builtin",
        model: "sim-demo",
      });
    const inQueue = (await claim())!.run;
    const withAgent = (await claim())!.run;
    expect([inQueue.order_id, withAgent.order_id]).toEqual([queued.id, waiting.id]);
    const ws = await t.workspaces.create(String(inQueue.id));
    const demo = demoOrders.find((o) => o.title === queued.title)!;
    for (const [file, content] of Object.entries(demo.files)) {
      await writeFile(path.join(ws.path, file), content);
    }
    const candidate = await t.workspaces.commitAll(ws, {
      message: `${queued.title}\n\nWork-Order: WO-${queued.id}\nRun: ${inQueue.id}\n`,
      authorName: "agent",
      authorEmail: "agent@nightshift.invalid",
    });
    await t.ledger.setRunPhase(inQueue.id, "agent", {
      workspace_path: ws.path,
      branch: ws.branch,
      base_commit: ws.baseCommit,
    });
    await t.ledger.setRunPhase(inQueue.id, "gates", { candidate_commit: candidate });
    await t.ledger.setRunPhase(inQueue.id, "merging");
    await t.ledger.setRunPhase(withAgent.id, "agent");

    const stop = new AbortController();
    const working = progressWhere(t, (p) => p.orderId === ours.id && p.state === "running");
    const allLanded = progressWhere(t, (p) => p.done === 3 && p.total === 3);
    const running = t.line.run({ forever: true, signal: stop.signal });
    cleanups.push(async () => {
      stop.abort();
      await running.catch(() => undefined);
    });

    // Its start-up recovery left the live leases alone; it is busy with the third order.
    await working;
    expect((await t.ledger.getRun(inQueue.id))?.worker_id).toBe("dead-worker");
    // The leases run out (back-dated rather than waited for): the line's timekeeper takes the
    // runs back on its next turn, without a restart. A lease is a JavaScript date, as the ledger
    // writes them (adoption compares it exactly, and now() would add microseconds).
    await sql`update runs set lease_expires_at = ${new Date(Date.now() - 1_000)}
      where worker_id = 'dead-worker'`.execute(t.ledger.db);
    await allLanded;
    stop.abort();
    await running;

    const after = await t.ledger.listOrders();
    expect(after.map((o) => o.status)).toEqual(["landed", "landed", "landed"]);
    const trailers = landedOrderTrailers(repo.dir);
    expect(trailers.sort()).toEqual(orders.map((o) => `WO-${o.id}`).sort());
    const runs = await t.ledger.listRuns();
    expect(runs.filter((r) => r.status === "running")).toEqual([]);
    // The queued candidate went back in the merge queue as the same run: adopted once, landed, and
    // no agent was paid for its order again.
    const adopted = runs.filter((r) => r.order_id === queued.id);
    expect(adopted.map((r) => [r.id, r.status, r.adoptions, r.worker_id])).toEqual([
      [inQueue.id, "landed", 1, "live-worker"],
    ]);
    const requests = await t.ledger.metering.listModelRequests();
    expect(requests.filter((r) => r.order_id === queued.id)).toEqual([]);
    // The run with its agent was abandoned and its order run again, the lost attempt not counted.
    const redone = runs.filter((r) => r.order_id === waiting.id);
    expect(redone.map((r) => [r.status, r.worker_id])).toEqual([
      ["abandoned", "dead-worker"],
      ["landed", "live-worker"],
    ]);
    expect(after.find((o) => o.id === waiting.id)?.attempts).toBe(1);
    expect(await t.ledger.listMerges()).toHaveLength(3);
  });

  it("picks up an order added while it waits, on the ledger's wake-up rather than its poll", async () => {
    const repo = await makeDemoRepo();
    cleanups.push(repo.cleanup);
    const idle = idleSignal();
    const t = await startTestLine({
      repo: repo.dir,
      policy: goodPolicy(),
      ledger: location(),
      workerId: "live-worker",
      soleWorker: false,
      logger: idle.logger,
      // Far longer than the test may take: only a wake-up can end the wait in time.
      settings: { pollIntervalMs: 3_600_000 },
    });
    cleanups.push(t.close);
    const stop = new AbortController();
    const firstIdle = idle.next();
    const running = t.line.run({ forever: true, signal: stop.signal });
    cleanups.push(async () => {
      stop.abort();
      await running.catch(() => undefined);
    });
    await firstIdle;

    const landed = progressWhere(t, (p) => p.state === "landed");
    const [order] = await t.ledger.addOrders([
      { title: demoOrders[0]!.title, spec: demoOrders[0]!.spec },
    ]);
    expect((await landed).orderId).toBe(order!.id);
    stop.abort();
    await running;
    expect((await t.ledger.getOrder(order!.id))?.status).toBe("landed");
  });
});
