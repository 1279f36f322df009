import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isNightshiftError } from "../../src/errors/index.ts";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { idleMemoryPglites } from "../../src/ledger/memory-ledgers.ts";
import { listMigrations, migrate } from "../../src/ledger/migrate.ts";
import {
  dropSchema,
  freshLedgerEachTest,
  freshSchemaName,
  ledgerBackends,
  POSTGRES_URL,
} from "../support/ledgers.ts";

const claimOptions = { workerId: "w1", leaseMs: 60_000, agent: "builtin", model: "sim" };

describe.each(ledgerBackends)("the ledger on $name", ({ location }) => {
  let ledger: Ledger;
  freshLedgerEachTest(location, (opened) => {
    ledger = opened;
  });

  it("hands out the most urgent queued order first, once", async () => {
    await ledger.addOrders([
      { title: "low", priority: 0 },
      { title: "high", priority: 5 },
    ]);
    const first = await ledger.claimNext(claimOptions);
    const second = await ledger.claimNext(claimOptions);
    const third = await ledger.claimNext(claimOptions);
    expect(first?.order.title).toBe("high");
    expect(first?.order.status).toBe("running");
    expect(first?.run.attempt).toBe(1);
    expect(second?.order.title).toBe("low");
    expect(third).toBeNull();
  });

  it("hands back the order and the run of a claim and of a finish exactly as the ledger reads them", async () => {
    await ledger.addOrders([
      { title: "base", key: "base" },
      { title: "typed", key: "typed", scope: ["src/a/"], dependsOn: ["base"], spec: "do it" },
    ]);
    const base = await ledger.claimNext(claimOptions);
    await ledger.finishRun(base!.run.id, {
      outcome: "landed",
      reason: "ok",
      previousMain: "a".repeat(40),
      landedCommit: "b".repeat(40),
    });
    // Scope-aware, as the line claims by default.
    const claim = await ledger.claimNext({ ...claimOptions, scopes: { unscoped: "parallel" } });
    expect(claim?.order.key).toBe("typed");
    expect(claim?.order).toEqual(await ledger.getOrder(claim!.order.id));
    expect(claim?.run).toEqual(await ledger.getRun(claim!.run.id));
    expect(claim?.order.updated_at).toBeInstanceOf(Date);

    await ledger.setRunPhase(claim!.run.id, "merging", { merge_commit: "c".repeat(40) });
    const finished = await ledger.finishRun(claim!.run.id, {
      outcome: "landed",
      reason: "ok",
      previousMain: "b".repeat(40),
      landedCommit: "d".repeat(40),
    });
    expect(finished.run.queue_seq).not.toBeNull();
    expect(finished.order).toEqual(await ledger.getOrder(claim!.order.id));
    expect(finished.run).toEqual(await ledger.getRun(claim!.run.id));
  });

  it("gives concurrent claimers different orders", async () => {
    await ledger.addOrders(Array.from({ length: 6 }, (_, i) => ({ title: `order ${i}` })));
    const claims = await Promise.all(
      Array.from({ length: 8 }, () => ledger.claimNext(claimOptions)),
    );
    const ids = claims.flatMap((c) => (c ? [c.order.id] : []));
    expect(ids).toHaveLength(6);
    expect(new Set(ids).size).toBe(6);
  });

  it("holds an order back until its dependencies land, and fails it when one fails", async () => {
    await ledger.addOrders([
      { title: "base", key: "base" },
      { title: "on top", key: "top", dependsOn: ["base"] },
      { title: "other", key: "other", dependsOn: ["doomed"] },
      { title: "doomed", key: "doomed", priority: -1 },
    ]);
    const base = await ledger.claimNext(claimOptions);
    expect(base?.order.key).toBe("base");
    const doomed = await ledger.claimNext(claimOptions);
    expect(doomed?.order.key).toBe("doomed");
    expect(await ledger.claimNext(claimOptions)).toBeNull();

    await ledger.finishRun(base!.run.id, {
      outcome: "landed",
      reason: "tests passed",
      previousMain: "a".repeat(40),
      landedCommit: "b".repeat(40),
    });
    const top = await ledger.claimNext(claimOptions);
    expect(top?.order.key).toBe("top");

    await ledger.finishRun(doomed!.run.id, { outcome: "failed", runStatus: "failed", reason: "x" });
    const blocked = await ledger.failBlockedOrders();
    expect(blocked.map((o) => o.key)).toEqual(["other"]);
    expect(blocked[0]?.failure_reason).toContain('dependency "doomed"');
  });

  it("rejects a batch with an unknown dependency or a reused key and adds none of it", async () => {
    await ledger.addOrders([{ title: "first", key: "first" }]);
    const unknownDep = ledger.addOrders([
      { title: "fine" },
      { title: "bad", dependsOn: ["missing"] },
    ]);
    await expect(unknownDep).rejects.toMatchObject({ code: "order_invalid" });
    await expect(unknownDep).rejects.toThrow(/depends on unknown key "missing"/);
    await expect(ledger.addOrders([{ title: "again", key: "first" }])).rejects.toThrow(
      /already used/,
    );
    expect((await ledger.listOrders()).map((o) => o.title)).toEqual(["first"]);
  });

  it("sends a failed run's order back with feedback, and records every transition", async () => {
    const [order] = await ledger.addOrders([{ title: "retry me" }]);
    const claim = await ledger.claimNext(claimOptions);
    await ledger.setRunPhase(claim!.run.id, "gates", { candidate_commit: "c".repeat(40) });
    await ledger.recordGate({
      run_id: claim!.run.id,
      gate: "test",
      stage: "candidate",
      commit_sha: "c".repeat(40),
      passed: false,
      exit_code: 1,
      timed_out: false,
      output: "not ok 1",
      duration_ms: 12,
    });
    const { order: after } = await ledger.finishRun(claim!.run.id, {
      outcome: "retry",
      runStatus: "rejected",
      reason: "test gate failed",
      feedback: "not ok 1",
    });
    expect(after.status).toBe("queued");
    expect(after.feedback).toBe("not ok 1");
    const again = await ledger.claimNext(claimOptions);
    expect(again?.run.attempt).toBe(2);
    expect(again?.order.feedback).toBe("not ok 1");
    const history = (await ledger.listTransitions(order!.id)).map(
      (t) => `${t.entity}:${t.from_status ?? "-"}>${t.to_status}`,
    );
    expect(history).toEqual([
      "order:->queued",
      "order:queued>running",
      "run:->running",
      "run:running>running",
      "run:running>rejected",
      "order:running>queued",
      "order:queued>running",
      "run:->running",
    ]);
    expect(await ledger.listGateResults(claim!.run.id)).toHaveLength(1);
  });

  it("keeps an order's own driver and model, and its runs record them (the defaults otherwise)", async () => {
    const [own, plain] = await ledger.addOrders([
      { title: "own agent", priority: 1, driver: "codex", model: "gpt-5" },
      { title: "factory agent" },
    ]);
    expect([own?.driver, own?.model]).toEqual(["codex", "gpt-5"]);
    expect([plain?.driver, plain?.model]).toEqual([null, null]);
    const first = await ledger.claimNext(claimOptions);
    const second = await ledger.claimNext(claimOptions);
    expect([first?.order.id, first?.run.agent, first?.run.model]).toEqual([
      own?.id,
      "codex",
      "gpt-5",
    ]);
    expect([second?.order.id, second?.run.agent, second?.run.model]).toEqual([
      plain?.id,
      "builtin",
      "sim",
    ]);
  });

  it("lists the distinct driver and model pairs that orders still to run need", async () => {
    const defaults = { driver: "builtin", model: "sim" };
    expect(await ledger.pendingAgentChoices(defaults)).toEqual([]);
    await ledger.addOrders([
      { title: "a" },
      { title: "b", model: "sim" },
      { title: "c", driver: "codex", model: "gpt-5" },
      { title: "d", driver: "codex", model: "gpt-5" },
      { title: "e", model: "sim-fast", priority: 1 },
      { title: "f", driver: "claude-code", model: "claude-x", priority: 2 },
      { title: "g", driver: "gemini-cli" },
    ]);
    // Done orders need nothing ("f" lands, "g" is cancelled); a running one ("e") still does.
    const f = await ledger.claimNext(claimOptions);
    expect(f?.order.title).toBe("f");
    await ledger.finishRun(f!.run.id, {
      outcome: "landed",
      reason: "ok",
      previousMain: "a".repeat(40),
      landedCommit: "e".repeat(40),
    });
    expect((await ledger.claimNext(claimOptions))?.order.title).toBe("e");
    const g = (await ledger.listOrders()).find((o) => o.title === "g");
    await ledger.cancelOrder(g!.id, "not wanted");
    expect(await ledger.pendingAgentChoices(defaults)).toEqual([
      { driver: "builtin", model: "sim" },
      { driver: "builtin", model: "sim-fast" },
      { driver: "codex", model: "gpt-5" },
    ]);
    expect(await ledger.pendingAgentChoices({ driver: "opencode", model: "m" })).toEqual([
      { driver: "codex", model: "gpt-5" },
      { driver: "opencode", model: "m" },
      { driver: "opencode", model: "sim" },
      { driver: "opencode", model: "sim-fast" },
    ]);
  });

  it("queues a requeued order again without counting the attempt", async () => {
    const [order] = await ledger.addOrders([{ title: "waits for the provider" }]);
    const claim = await ledger.claimNext(claimOptions);
    expect(claim?.order.attempts).toBe(1);
    const { order: after, run } = await ledger.finishRun(claim!.run.id, {
      outcome: "requeue",
      reason: "the model provider refused the request (401): invalid x-api-key",
    });
    expect([after.status, after.attempts, after.feedback]).toEqual(["queued", 0, null]);
    expect([run.status, run.outcome_reason]).toEqual([
      "failed",
      "the model provider refused the request (401): invalid x-api-key",
    ]);
    expect((await ledger.claimNext(claimOptions))?.run.attempt).toBe(1);
    expect((await ledger.getOrder(order!.id))?.attempts).toBe(1);
  });

  it("records a proposed ending's pull request, and a failed one's reason and feedback", async () => {
    const [proposed, failed] = await ledger.addOrders([
      { title: "proposed", priority: 1 },
      { title: "failed" },
    ]);
    const first = await ledger.claimNext(claimOptions);
    const second = await ledger.claimNext(claimOptions);
    const url = "https://github.com/o/r/pull/7";
    const p = await ledger.finishRun(first!.run.id, {
      outcome: "proposed",
      reason: `proposed as ${url}`,
      pullRequestUrl: url,
    });
    expect(p.order).toMatchObject({ id: proposed!.id, status: "proposed", pull_request_url: url });
    expect(p.run).toMatchObject({ status: "proposed", phase: "done", merge_commit: null });
    const f = await ledger.finishRun(second!.run.id, {
      outcome: "failed",
      runStatus: "rejected",
      reason: "gates failed 3 times",
      feedback: "not ok 2",
    });
    expect(f.order).toMatchObject({
      id: failed!.id,
      status: "failed",
      failure_reason: "gates failed 3 times",
      feedback: "not ok 2",
    });
    expect(f.run).toMatchObject({ status: "rejected", outcome_reason: "gates failed 3 times" });
    expect(f.run.ended_at).toBeInstanceOf(Date);
    const history = (await ledger.listTransitions(failed!.id)).map(
      (t) => `${t.entity}:${t.to_status}:${t.message}`,
    );
    expect(history.slice(-2)).toEqual([
      "run:rejected:gates failed 3 times",
      "order:failed:gates failed 3 times",
    ]);
  });

  it("will not let a run be finished twice", async () => {
    await ledger.addOrders([{ title: "once" }]);
    const claim = await ledger.claimNext(claimOptions);
    const landed = {
      outcome: "landed" as const,
      reason: "ok",
      previousMain: "a".repeat(40),
      landedCommit: "d".repeat(40),
    };
    await ledger.finishRun(claim!.run.id, landed);
    const twice = ledger.finishRun(claim!.run.id, landed);
    await expect(twice).rejects.toSatisfy(isNightshiftError);
    expect(await ledger.listMerges()).toHaveLength(1);
  });

  it("takes back runs whose worker died: requeued, or landed if main already has the commit", async () => {
    await ledger.addOrders([{ title: "in flight" }, { title: "mid-merge" }]);
    const inFlight = await ledger.claimNext({ ...claimOptions, leaseMs: -1 });
    const midMerge = await ledger.claimNext({ ...claimOptions, leaseMs: -1 });
    await ledger.setRunFacts(midMerge!.run.id, {
      base_commit: "a".repeat(40),
      merge_commit: "e".repeat(40),
    });
    const recovered = await ledger.recovery.recoverRuns({
      all: false,
      hasLanded: async (commit) => commit === "e".repeat(40),
    });
    expect(recovered.map((r) => [r.run.order_id, r.outcome])).toEqual([
      [inFlight!.order.id, "requeued"],
      [midMerge!.order.id, "landed"],
    ]);
    const orders = await ledger.listOrders();
    expect(orders.map((o) => [o.status, o.attempts])).toEqual([
      ["queued", 0],
      ["landed", 1],
    ]);
    expect((await ledger.listRuns()).map((r) => r.status)).toEqual(["abandoned", "landed"]);
  });

  it("adopts runs that died in the merge queue: re-leased to the new worker, in queue order", async () => {
    await ledger.addOrders([
      { title: "queued second" },
      { title: "queued first" },
      { title: "still in gates" },
      { title: "adopted too often" },
    ]);
    const claims = [];
    for (let i = 0; i < 4; i++)
      claims.push(await ledger.claimNext({ ...claimOptions, leaseMs: -1 }));
    const [second, first, gates, tired] = claims.map((c) => c!.run);
    // Enter the queue: first, then second (not in id order), then the one adopted too often.
    for (const run of [first!, second!, tired!]) {
      await ledger.setRunPhase(run.id, "gates", { candidate_commit: `${run.id}`.padEnd(40, "c") });
      await ledger.setRunPhase(run.id, "merging");
    }
    await ledger.recordQueueRound(first!.id, 2);
    await ledger.recordQueueRound(first!.id, 1);
    await ledger.setRunPhase(gates!.id, "gates", { candidate_commit: "d".repeat(40) });
    await ledger.db.updateTable("runs").set({ adoptions: 3 }).where("id", "=", tired!.id).execute();

    const asked: number[] = [];
    const recovered = await ledger.recovery.recoverRuns({
      all: false,
      hasLanded: async () => false,
      adopt: {
        workerId: "w2",
        leaseMs: 60_000,
        maxAdoptions: 3,
        canResume: async (run) => {
          asked.push(run.id);
          return true;
        },
      },
    });
    expect(recovered.map((r) => [r.run.id, r.outcome])).toEqual([
      [first!.id, "adopted"],
      [second!.id, "adopted"],
      [tired!.id, "requeued"],
      [gates!.id, "requeued"],
    ]);
    expect(asked).toEqual([first!.id, second!.id]);
    const adopted = recovered[0]!.run;
    expect(adopted).toMatchObject({
      status: "running",
      phase: "merging",
      worker_id: "w2",
      adoptions: 1,
      queue_rounds: 2,
    });
    expect(adopted.lease_expires_at.getTime()).toBeGreaterThan(Date.now());
    // The adopted runs' orders stay running on the same attempt; the others go back to the queue.
    const orders = await ledger.listOrders();
    expect(orders.map((o) => [o.status, o.attempts])).toEqual([
      ["running", 1],
      ["running", 1],
      ["queued", 0],
      ["queued", 0],
    ]);
    // The lease is the new worker's now: the dead one cannot renew it, a later recovery leaves it.
    expect(await ledger.heartbeat(first!.id, "w1", 60_000)).toBe(false);
    expect(await ledger.heartbeat(first!.id, "w2", 60_000)).toBe(true);
    expect(await ledger.recovery.recoverRuns({ all: false, hasLanded: async () => false })).toEqual(
      [],
    );
    // A second adopter racing on the stale row it read loses.
    expect(
      await ledger.recovery.adoptRun(first!, { workerId: "w3", leaseMs: 60_000 }),
    ).toBeUndefined();
    const transitions = await ledger.listTransitions(first!.order_id);
    expect(transitions.at(-1)?.message).toMatch(/adopted by worker w2 after worker w1 stopped/);
    // The adopted run then ends through the normal path.
    const { order } = await ledger.finishRun(first!.id, {
      outcome: "landed",
      reason: "landed",
      previousMain: "a".repeat(40),
      landedCommit: "b".repeat(40),
    });
    expect(order.status).toBe("landed");
  });

  it("gives up on an adopted run that cannot be resumed, without counting the attempt", async () => {
    await ledger.addOrders([{ title: "lost candidate" }]);
    const claim = await ledger.claimNext({ ...claimOptions, leaseMs: -1 });
    await ledger.setRunPhase(claim!.run.id, "merging", { candidate_commit: "c".repeat(40) });
    const [recovered] = await ledger.recovery.recoverRuns({
      all: true,
      hasLanded: async () => false,
      adopt: { workerId: "w2", leaseMs: 60_000, maxAdoptions: 3, canResume: async () => true },
    });
    expect(recovered?.outcome).toBe("adopted");
    const abandoned = await ledger.recovery.abandon(claim!.run.id, "worktree gone");
    expect(abandoned?.status).toBe("abandoned");
    expect(abandoned?.outcome_reason).toBe("worktree gone; order queued again");
    expect(await ledger.recovery.abandon(claim!.run.id, "again")).toBeUndefined();
    const [order] = await ledger.listOrders();
    expect([order?.status, order?.attempts]).toEqual(["queued", 0]);
  });

  it("leaves runs with a live lease alone unless told the worker is gone", async () => {
    await ledger.addOrders([{ title: "live" }]);
    const claim = await ledger.claimNext(claimOptions);
    expect(await ledger.recovery.recoverRuns({ all: false, hasLanded: async () => false })).toEqual(
      [],
    );
    expect(await ledger.heartbeat(claim!.run.id, "w1", 60_000)).toBe(true);
    expect(await ledger.heartbeat(claim!.run.id, "someone else", 60_000)).toBe(false);
    const recovered = await ledger.recovery.recoverRuns({
      all: true,
      hasLanded: async () => false,
    });
    expect(recovered).toHaveLength(1);
    expect(await ledger.heartbeat(claim!.run.id, "w1", 60_000)).toBe(false);
  });

  it("keeps run events in order, and meters each model request once into its run and the totals", async () => {
    await ledger.addOrders([{ title: "usage" }]);
    const claim = await ledger.claimNext(claimOptions);
    const runId = claim!.run.id;
    await ledger.appendEvents(runId, [
      { kind: "message", payload: { text: "hi" } },
      { kind: "tool_call", payload: { name: "list_files" } },
    ]);
    await ledger.appendEvents(runId, [{ kind: "done", payload: { reason: "completed" } }]);
    const metered = (requestId: string, input: number, output: number, cost: number) => ({
      request_id: requestId,
      run_id: runId,
      order_id: claim!.order.id,
      protocol: "openai-chat",
      model: "sim-demo",
      status: 200,
      stream: false,
      input_tokens: input,
      output_tokens: output,
      cached_input_tokens: 0,
      cost_usd: cost,
      usage_estimated: false,
      latency_ms: 3,
      attempts: 1,
      error: null,
    });
    await ledger.metering.recordModelRequests([
      metered("a", 100, 20, 0.5),
      metered("b", 50, 5, 0.25),
    ]);
    // A batch retried after an unknown outcome is not counted twice.
    await ledger.metering.recordModelRequests([metered("b", 50, 5, 0.25)]);
    expect(await ledger.metering.spend({ runId })).toEqual({
      costUsd: 0.75,
      tokens: 175,
      requests: 2,
    });
    const events = await ledger.listEvents(runId);
    expect(events.map((e) => [e.seq, e.kind])).toEqual([
      [1, "message"],
      [2, "tool_call"],
      [3, "done"],
    ]);
    expect(events[1]?.payload).toEqual({ name: "list_files" });
    const totals = await ledger.totals();
    expect(totals).toMatchObject({ runs: 1, inputTokens: 150, outputTokens: 25, costUsd: 0.75 });
    expect(totals.orders.running).toBe(1);
  });
});

describe("claims by workers racing on one PostgreSQL ledger", () => {
  const schema = freshSchemaName("claims");
  const ledgers: Ledger[] = [];
  afterAll(async () => {
    await Promise.all(ledgers.map((l) => l.close()));
    await dropSchema(schema);
  });

  beforeAll(async () => {
    for (let i = 0; i < 4; i++) {
      ledgers.push(await openLedger({ kind: "postgres", url: POSTGRES_URL, schema }, "test"));
    }
  });

  it("never hand one order to two workers, nor an order before its dependency landed", async () => {
    const [first] = ledgers as [Ledger];
    // Twelve roots, and twelve orders each waiting on one of them.
    await first.addOrders(
      Array.from({ length: 12 }, (_, i) => [
        { title: `root ${i}`, key: `root${i}` },
        { title: `leaf ${i}`, key: `leaf${i}`, dependsOn: [`root${i}`], priority: 1 },
      ]).flat(),
    );
    const landed = new Set<string>();
    const claimed: string[] = [];
    while (claimed.length < 24) {
      const claims = await Promise.all(
        ledgers.flatMap((l, w) =>
          [0, 1, 2].map(() => l.claimNext({ ...claimOptions, workerId: `w${w}` })),
        ),
      );
      const fresh = claims.flatMap((c) => (c ? [c] : []));
      expect(fresh.length).toBeGreaterThan(0);
      for (const { order } of fresh) {
        for (const dep of order.depends_on) expect(landed).toContain(dep);
        claimed.push(order.key ?? "");
      }
      await Promise.all(
        fresh.map(async ({ order, run }) => {
          await first.finishRun(run.id, {
            outcome: "landed",
            reason: "ok",
            previousMain: "a".repeat(40),
            landedCommit: run.id.toString(16).padStart(40, "0"),
          });
          landed.add(order.key ?? "");
        }),
      );
    }
    expect(new Set(claimed).size).toBe(24);
  });

  it("pass over an order a person's control holds locked, scope-aware or not", async () => {
    const [first] = ledgers as [Ledger];
    const [held, free, other] = await first.addOrders([
      { title: "held", priority: 9 },
      { title: "free", priority: 8 },
      { title: "other", priority: 7 },
    ]);
    const control = new pg.Client({
      connectionString: POSTGRES_URL,
      options: `-c search_path=${schema}`,
    });
    await control.connect();
    try {
      await control.query("begin");
      await control.query("select id from work_orders where id = $1 for update", [held!.id]);
      const scoped = await first.claimNext({ ...claimOptions, scopes: { unscoped: "parallel" } });
      expect(scoped?.order.id).toBe(free!.id);
      const plain = await first.claimNext(claimOptions);
      expect(plain?.order.id).toBe(other!.id);
    } finally {
      await control.query("rollback");
      await control.end();
    }
    expect((await first.getOrder(held!.id))?.status).toBe("queued");
  });
});

describe("in-memory ledgers", () => {
  it("each start empty and fully migrated, whatever was written to one opened before", async () => {
    const first = await openLedger({ kind: "memory" }, "test");
    try {
      await first.addOrders([{ title: "only in the first" }]);
      const second = await openLedger({ kind: "memory" }, "test");
      try {
        expect(await second.claimNext(claimOptions)).toBeNull();
        expect(await migrate(second.db)).toEqual([]);
        const migrations = await sql<{ n: number }>`
          select count(*)::int as n from nightshift_migrations`.execute(second.db);
        expect(migrations.rows[0]?.n).toBe((await listMigrations()).length);
      } finally {
        await second.close();
      }
      expect((await first.claimNext(claimOptions))?.order.title).toBe("only in the first");
    } finally {
      await first.close();
    }
  });

  it("a closed one is wiped back to that state before the next opener gets it", async () => {
    const first = await openLedger({ kind: "memory" }, "test");
    const pristine = await first.line.state();
    await first.addOrders([{ title: "a" }, { title: "b" }]);
    await first.claimNext(claimOptions);
    await first.line.pause("tester", "left paused");
    await first.close();
    const idleBefore = idleMemoryPglites();
    expect(idleBefore).toBeGreaterThan(0);

    const second = await openLedger({ kind: "memory" }, "test");
    try {
      expect(idleMemoryPglites()).toBe(idleBefore - 1);
      expect(await second.listOrders()).toEqual([]);
      expect(await second.listRuns()).toEqual([]);
      // The seed rows are back as the migrations left them, and ids start again at 1.
      expect(await second.line.state()).toEqual(pristine);
      const [order] = await second.addOrders([{ title: "c" }]);
      expect(order?.id).toBe(1);
      expect((await second.claimNext(claimOptions))?.run.id).toBe(1);
    } finally {
      await second.close();
    }
  });
});
