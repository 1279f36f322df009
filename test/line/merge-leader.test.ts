import { sql } from "kysely";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Ledger } from "../../src/ledger/index.ts";
import { LeaderMergeQueue } from "../../src/line/index.ts";
import type { LandingResult, MergeQueue } from "../../src/merge/index.ts";
import type { Workspace } from "../../src/workspace/index.ts";
import { freshSchemaName, openTestLedger, POSTGRES_URL } from "../support/ledgers.ts";

const HOOKS = { onGate: async () => {}, beforeFastForward: async () => {} };
const workspace = (runId: string): Workspace => ({
  runId,
  path: `/nowhere/${runId}`,
  branch: `nightshift/run-${runId}`,
  baseCommit: "0".repeat(40),
});

/**
 * A merge queue that only records who is landing when: which worker is inside `land`, so the test
 * sees whether two workers ever landed at once. Each landing waits for `release` to be called.
 */
class RecordingQueue implements MergeQueue {
  static inside = new Set<string>();
  static overlaps = 0;
  static landed: string[] = [];
  readonly waiting: (() => void)[] = [];
  constructor(private readonly worker: string) {}
  async land(ws: Workspace): Promise<LandingResult> {
    RecordingQueue.landed.push(ws.runId);
    RecordingQueue.inside.add(this.worker);
    if (RecordingQueue.inside.size > 1) RecordingQueue.overlaps += 1;
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    RecordingQueue.inside.delete(this.worker);
    return { status: "landed", previousMain: ws.baseCommit, commit: ws.runId.padEnd(40, "0") };
  }
}

function logLines() {
  const lines: string[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}

async function until(what: string, check: () => boolean | Promise<boolean>) {
  const deadline = Date.now() + 120_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never saw ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("the merge leader among workers sharing PostgreSQL", () => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    ({ ledger, dispose } = await openTestLedger({
      kind: "postgres",
      url: POSTGRES_URL,
      schema: freshSchemaName("leader"),
    }));
  });
  afterEach(async () => {
    await dispose();
  });

  /** A run of `workerId` whose candidate has entered the merge queue, as the line leaves it. */
  async function candidateInQueue(workerId: string): Promise<number> {
    const [order] = await ledger.addOrders([{ title: `candidate of ${workerId}` }]);
    const claim = await ledger.claimNext({ workerId, leaseMs: 60_000, agent: "sim", model: "sim" });
    expect(claim?.order.id).toBe(order?.id);
    await ledger.setRunPhase(claim!.run.id, "merging");
    return claim!.run.id;
  }

  /** What the foreman does once a landing returns: the run ends, and leaves the queue. */
  async function finish(runId: number) {
    await ledger.finishRun(runId, {
      outcome: "landed",
      reason: "landed",
      previousMain: "0".repeat(40),
      landedCommit: String(runId).padEnd(40, "0"),
    });
  }

  it("waits while a dead leader's lease lasts, takes over when it runs out, and steps down when idle", async () => {
    expect(await ledger.workers.lead("dead-worker", 60_000)).toBe(true);
    const { logger, lines } = logLines();
    const inner = new RecordingQueue("w1");
    const queue = new LeaderMergeQueue(inner, {
      roster: ledger.workers,
      workerId: "w1",
      leaseMs: 60_000,
      pollMs: 50,
      logger,
    });
    const runId = await candidateInQueue("w1");
    const landing = queue.land(workspace(String(runId)), HOOKS);
    await until("w1 waiting", () =>
      lines.some((l) => l.includes("waiting to become merge leader")),
    );
    expect(inner.waiting).toHaveLength(0);

    await sql`update merge_leader set lease_expires_at = now() - interval '1 second'`.execute(
      ledger.db,
    );
    await until("w1 landing", () => inner.waiting.length === 1);
    expect((await ledger.workers.leader())?.workerId).toBe("w1");
    expect(lines.some((l) => l.includes("took over as merge leader"))).toBe(true);
    inner.waiting[0]?.();
    expect((await landing).status).toBe("landed");
    expect(await ledger.workers.leader()).toBeUndefined();
  });

  it("never lets two workers land at once, and lands in queue order whichever worker holds the candidate", async () => {
    RecordingQueue.inside.clear();
    RecordingQueue.overlaps = 0;
    RecordingQueue.landed = [];
    const { logger } = logLines();
    const workers = ["w1", "w2", "w3"].map((id) => {
      const inner = new RecordingQueue(id);
      const queue = new LeaderMergeQueue(inner, {
        roster: ledger.workers,
        workerId: id,
        leaseMs: 60_000,
        pollMs: 20,
        logger,
      });
      return { id, inner, queue };
    });
    // Candidates enter the queue interleaved across workers; w1 has the most.
    const entered: { worker: (typeof workers)[number]; runId: number }[] = [];
    for (const i of [0, 0, 1, 0, 2, 1, 0, 2, 0]) {
      const worker = workers[i]!;
      entered.push({ worker, runId: await candidateInQueue(worker.id) });
    }
    // Each worker asks to land its candidates, newest first: the queue's order still wins.
    const landings = new Map(
      [...entered]
        .reverse()
        .map(({ worker, runId }) => [runId, worker.queue.land(workspace(String(runId)), HOOKS)]),
    );
    for (const { runId } of entered) {
      await until("a landing", () => workers.some((w) => w.inner.waiting.length > 0));
      const busy = workers.filter((w) => w.inner.waiting.length > 0);
      expect(busy).toHaveLength(1);
      expect((await ledger.workers.leader())?.workerId).toBe(busy[0]?.id);
      expect(RecordingQueue.landed.at(-1)).toBe(String(runId));
      busy[0]?.inner.waiting.shift()?.();
      expect((await landings.get(runId))?.status).toBe("landed");
      await finish(runId);
    }
    expect(RecordingQueue.landed).toEqual(entered.map((e) => String(e.runId)));
    expect(RecordingQueue.overlaps).toBe(0);
    expect(await ledger.workers.leader()).toBeUndefined();
  });

  it("passes over a dead worker's candidate at the head once its lease runs out", async () => {
    RecordingQueue.landed = [];
    const { logger, lines } = logLines();
    const dead = await candidateInQueue("dead-worker");
    const alive = await candidateInQueue("w1");
    const inner = new RecordingQueue("w1");
    const queue = new LeaderMergeQueue(inner, {
      roster: ledger.workers,
      workerId: "w1",
      leaseMs: 60_000,
      pollMs: 20,
      logger,
    });
    const landing = queue.land(workspace(String(alive)), HOOKS);
    // While the dead worker's lease lasts, its candidate holds the head and w1 waits.
    await until("w1 waiting", () =>
      lines.some((l) => l.includes("waiting to become merge leader")),
    );
    expect(inner.waiting).toHaveLength(0);
    await sql`update runs set lease_expires_at = now() - interval '1 second' where id = ${dead}`.execute(
      ledger.db,
    );
    await until("w1 landing", () => inner.waiting.length === 1);
    expect(RecordingQueue.landed).toEqual([String(alive)]);
    inner.waiting.shift()?.();
    expect((await landing).status).toBe("landed");
  });
});
