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
  readonly waiting: (() => void)[] = [];
  constructor(private readonly worker: string) {}
  async land(ws: Workspace): Promise<LandingResult> {
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
    const landing = queue.land(workspace("1"), HOOKS);
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

  it("never lets two workers land at once", async () => {
    RecordingQueue.inside.clear();
    RecordingQueue.overlaps = 0;
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
    const landings = workers.flatMap((w) =>
      [0, 1, 2].map((i) => w.queue.land(workspace(`${w.id}-${i}`), HOOKS)),
    );
    let released = 0;
    while (released < landings.length) {
      await until("a landing", () => workers.some((w) => w.inner.waiting.length > 0));
      const busy = workers.filter((w) => w.inner.waiting.length > 0);
      // Only the leader's queue is landing; its other candidates may wait inside its own queue.
      expect(busy).toHaveLength(1);
      expect((await ledger.workers.leader())?.workerId).toBe(busy[0]?.id);
      busy[0]?.inner.waiting.shift()?.();
      released += 1;
    }
    const results = await Promise.all(landings);
    expect(results.every((r) => r.status === "landed")).toBe(true);
    expect(RecordingQueue.overlaps).toBe(0);
  });
});
