import { type Kysely, sql } from "kysely";
import { isNightshiftError, NightshiftError } from "../errors/index.ts";
import { AcceptanceRecords } from "./acceptance.ts";
import { LineSwitch } from "./line-state.ts";
import { OrderControls } from "./order-controls.ts";
import type {
  Database,
  Defect,
  GateResult,
  ModelRequest,
  ModelRequestDeadLetter,
  NewGateResult,
  NewModelRequest,
  OrderStatus,
  Run,
  RunPhase,
  RunStatus,
  Transition,
  WorkOrder,
} from "./schema.ts";
import { type Db, recordTransition } from "./transitions.ts";

export interface NewWorkOrder {
  title: string;
  spec?: string;
  acceptance?: string;
  priority?: number;
  scope?: string[];
  key?: string;
  dependsOn?: string[];
  maxAttempts?: number;
  budgetTokens?: number;
  /** The agent driver its runs use, when not the factory's default. */
  driver?: string;
  /** The model its runs use, when not the factory's default. */
  model?: string;
  source?: string;
  /** Waits for a person's approval (`nightshift approve`) before it is queued. */
  needsApproval?: boolean;
  /** Its own hidden acceptance scenarios (file name and content), never shown to the agent. */
  holdout?: { name: string; content: string }[];
}

/** An agent driver and the model it runs with: what a run needs working before it starts. */
export interface AgentChoice {
  driver: string;
  model: string;
}

export interface Claim {
  order: WorkOrder;
  run: Run;
}

/** How a run ended, and what that means for its order. */
export type RunEnding =
  | { outcome: "landed"; reason: string; previousMain: string; landedCommit: string }
  | { outcome: "retry"; runStatus: "rejected" | "failed"; reason: string; feedback: string }
  | { outcome: "failed"; runStatus: "rejected" | "failed"; reason: string; feedback?: string }
  /** Not the order's fault (e.g. the factory's budget ran out): queued again, attempt not counted. */
  | { outcome: "requeue"; reason: string };

export interface SpendTotals {
  costUsd: number;
  tokens: number;
  requests: number;
}

/** One budget scope's standing: what is spent, and what requests in flight may still spend. */
export interface BudgetAccount {
  key: string;
  spentTokens: number;
  spentUsd: number;
  reservedTokens: number;
  reservedUsd: number;
}

/** A request's claim on its budgets: the accounts it is checked against, each with its limits. */
export interface BudgetHold {
  requestId: string;
  accounts: { key: string; tokens?: number | undefined; usd?: number | undefined }[];
  /** Whole tokens. */
  tokens: number;
  usd: number;
  /** The UTC day (YYYY-MM-DD) its spend is charged to. */
  day: string;
  /** After this long unmetered, the reservation is released (its gateway is presumed gone). */
  ttlMs: number;
}

export type BudgetVerdict =
  | { admitted: true }
  | {
      admitted: false;
      key: string;
      unit: "tokens" | "usd";
      spent: number;
      reserved: number;
      limit: number;
      requested: number;
    };

/**
 * The accounts a model request's spend is charged to. The ledger owns this naming: the gateway
 * reserves on these keys, and recordModelRequests charges the same ones.
 */
export function budgetAccountKeys(
  grant: { runId: number | null; orderId: number | null },
  day: string,
) {
  return {
    run: grant.runId === null ? undefined : `run:${grant.runId}`,
    order: grant.orderId === null ? undefined : `order:${grant.orderId}`,
    day: `day:${day}`,
    total: "total",
  };
}

/**
 * Tells a waiting worker that an order may have become claimable (see 0008_wakeups.sql); resolves
 * to its unsubscribe. `onError` hears that the wake-ups stopped (a lost connection): the worker
 * then finds work by polling alone.
 */
export type WakeupSource = (
  onWake: () => void,
  onError: (error: unknown) => void,
) => Promise<() => Promise<void>>;

/** A run left `running` under a lease nobody renewed. */
export interface ExpiredLease {
  id: number;
  order_id: number;
  worker_id: string;
  phase: RunPhase;
  lease_expires_at: Date;
}

export interface LedgerTotals {
  orders: Record<OrderStatus, number>;
  runs: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/**
 * Every fact of the line, in one database. Methods that change an order's state do it in one
 * transaction together with the transition row that records the change, so the history never
 * disagrees with the state.
 */
export class Ledger {
  /** A person's controls: retry, requeue, cancel, approve, reject; closing defects. */
  readonly controls: OrderControls;
  /** Hidden scenarios per order, and the checks of main itself. */
  readonly acceptance: AcceptanceRecords;
  /** Whether the line takes new runs (pause/resume), for every worker sharing the ledger. */
  readonly line: LineSwitch;

  constructor(
    readonly db: Kysely<Database>,
    private readonly closeFn: () => Promise<void>,
    private readonly wakeups?: WakeupSource,
  ) {
    this.controls = new OrderControls(db);
    this.acceptance = new AcceptanceRecords(db);
    this.line = new LineSwitch(db);
  }

  close(): Promise<void> {
    return this.closeFn();
  }

  /**
   * Calls `onWake` whenever an order may have become claimable: added, queued again, or a
   * dependency landed. Resolves to the unsubscribe. A ledger without wake-ups never calls it.
   */
  async onWork(
    onWake: () => void,
    onError: (error: unknown) => void,
  ): Promise<() => Promise<void>> {
    if (!this.wakeups) return async () => {};
    return this.wakeups(onWake, onError);
  }

  // ── intake ────────────────────────────────────────────────────────────────────────────────────

  /** Adds orders all-or-nothing; dependencies must name keys in this batch or already queued. */
  async addOrders(orders: NewWorkOrder[]): Promise<WorkOrder[]> {
    return this.db.transaction().execute(async (tx) => {
      await this.checkKeys(tx, orders);
      const added: WorkOrder[] = [];
      for (const order of orders) {
        const row = await tx
          .insertInto("work_orders")
          .values({
            title: order.title,
            spec: order.spec ?? "",
            acceptance: order.acceptance ?? "",
            priority: order.priority ?? 0,
            scope: JSON.stringify(order.scope ?? []),
            key: order.key ?? null,
            depends_on: JSON.stringify(order.dependsOn ?? []),
            max_attempts: order.maxAttempts ?? null,
            budget_tokens: order.budgetTokens ?? null,
            driver: order.driver ?? null,
            model: order.model ?? null,
            source: order.source ?? "cli",
            ...(order.needsApproval ? { status: "waiting" as const } : {}),
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        for (const scenario of order.holdout ?? []) {
          await tx
            .insertInto("holdout_scenarios")
            .values({
              order_id: row.id,
              name: scenario.name,
              content: scenario.content,
              source: order.source ?? "cli",
            })
            .execute();
        }
        await recordTransition(tx, { order_id: row.id, entity: "order", to_status: row.status });
        added.push(row);
      }
      return added;
    });
  }

  private async checkKeys(tx: Db, orders: NewWorkOrder[]) {
    const batchKeys = orders.flatMap((o) => (o.key ? [o.key] : []));
    const duplicate = batchKeys.find((k, i) => batchKeys.indexOf(k) !== i);
    if (duplicate) throw orderError(`key "${duplicate}" is used by more than one order`);
    const wanted = [...new Set([...batchKeys, ...orders.flatMap((o) => o.dependsOn ?? [])])];
    const existing =
      wanted.length === 0
        ? []
        : await tx.selectFrom("work_orders").select("key").where("key", "in", wanted).execute();
    const known = new Set(existing.map((r) => r.key));
    const taken = batchKeys.find((k) => known.has(k));
    if (taken) throw orderError(`key "${taken}" is already used by an order in the ledger`);
    for (const order of orders) {
      for (const dep of order.dependsOn ?? []) {
        if (!known.has(dep) && !batchKeys.includes(dep)) {
          throw orderError(`order "${order.title}" depends on unknown key "${dep}"`);
        }
      }
    }
  }

  async cancelOrder(id: number, reason: string): Promise<WorkOrder> {
    return this.db.transaction().execute(async (tx) => {
      const order = await tx
        .updateTable("work_orders")
        .set({ status: "cancelled", failure_reason: reason, updated_at: new Date() })
        .where("id", "=", id)
        .where("status", "=", "queued")
        .returningAll()
        .executeTakeFirst();
      if (!order) throw orderError(`order ${id} is not queued, so it cannot be cancelled`);
      await recordTransition(tx, {
        order_id: id,
        entity: "order",
        from_status: "queued",
        to_status: "cancelled",
        message: reason,
      });
      return order;
    });
  }

  // ── the line ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Takes the most urgent queued order whose dependencies have all landed and opens a run on it
   * under a lease. `skip locked` lets several workers claim at once without waiting on each other.
   * The run records the driver and model it uses: the order's own, else `agent` and `model`.
   */
  async claimNext(options: {
    workerId: string;
    leaseMs: number;
    /** The driver for an order that names none. */
    agent: string;
    /** The model for an order that names none. */
    model: string;
  }): Promise<Claim | null> {
    return this.db.transaction().execute(async (tx) => {
      const picked = await sql<{ id: number }>`
        select o.id from work_orders o
        where o.status = 'queued'
          and not exists (
            select 1 from jsonb_array_elements_text(o.depends_on) as dep(key)
            where not exists (
              select 1 from work_orders d where d.key = dep.key and d.status = 'landed'))
        order by o.priority desc, o.id
        limit 1
        for update skip locked`.execute(tx);
      const id = picked.rows[0]?.id;
      if (id === undefined) return null;
      const order = await tx
        .updateTable("work_orders")
        .set((eb) => ({
          status: "running",
          attempts: eb("attempts", "+", 1),
          updated_at: new Date(),
        }))
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirstOrThrow();
      const run = await tx
        .insertInto("runs")
        .values({
          order_id: id,
          attempt: order.attempts,
          agent: order.driver ?? options.agent,
          model: order.model ?? options.model,
          worker_id: options.workerId,
          lease_expires_at: new Date(Date.now() + options.leaseMs),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordTransition(tx, {
        order_id: id,
        entity: "order",
        from_status: "queued",
        to_status: "running",
        message: `attempt ${order.attempts}`,
      });
      await recordTransition(tx, {
        order_id: id,
        run_id: run.id,
        entity: "run",
        to_status: "running",
      });
      return { order, run };
    });
  }

  /**
   * Every distinct driver and model that orders still to run (queued, or running and so requeued
   * on a restart) will use, an order naming none taking `defaults`: what a check before the line
   * starts must prove working, so that no order finds out by burning its attempts.
   */
  async pendingAgentChoices(defaults: AgentChoice): Promise<AgentChoice[]> {
    const rows = await this.db
      .selectFrom("work_orders")
      .select((eb) => [
        eb.fn.coalesce("driver", eb.val(defaults.driver)).as("driver"),
        eb.fn.coalesce("model", eb.val(defaults.model)).as("model"),
      ])
      .where("status", "in", ["queued", "running"])
      .distinct()
      .orderBy("driver")
      .orderBy("model")
      .execute();
    return rows.map((r) => ({ driver: r.driver, model: r.model }));
  }

  /** Orders that can never start because a dependency failed or was cancelled become failed. */
  async failBlockedOrders(): Promise<WorkOrder[]> {
    return this.db.transaction().execute(async (tx) => {
      const blocked = await sql<{ id: number; dep: string }>`
        select o.id, d.key as dep from work_orders o
        join work_orders d on o.depends_on ? d.key
        where o.status = 'queued' and d.status in ('failed', 'cancelled')`.execute(tx);
      const failed: WorkOrder[] = [];
      for (const { id, dep } of blocked.rows) {
        const reason = `dependency "${dep}" did not land`;
        const order = await tx
          .updateTable("work_orders")
          .set({ status: "failed", failure_reason: reason, updated_at: new Date() })
          .where("id", "=", id)
          .where("status", "=", "queued")
          .returningAll()
          .executeTakeFirst();
        if (!order) continue;
        await recordTransition(tx, {
          order_id: id,
          entity: "order",
          from_status: "queued",
          to_status: "failed",
          message: reason,
        });
        failed.push(order);
      }
      return failed;
    });
  }

  /** Renews a run's lease; false when the lease was lost (the run was taken back meanwhile). */
  async heartbeat(runId: number, workerId: string, leaseMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable("runs")
      .set({ lease_expires_at: new Date(Date.now() + leaseMs) })
      .where("id", "=", runId)
      .where("worker_id", "=", workerId)
      .where("status", "=", "running")
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async setRunPhase(runId: number, phase: RunPhase, facts: RunFacts = {}): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const run = await tx
        .updateTable("runs")
        .set({
          phase,
          ...facts,
          // Entering the merge queue takes a place in it, kept over a restart.
          ...(phase === "merging"
            ? { queue_seq: sql<string>`coalesce(queue_seq, nextval('merge_queue_seq'))` }
            : {}),
        })
        .where("id", "=", runId)
        .returning(["order_id"])
        .executeTakeFirstOrThrow();
      await recordTransition(tx, {
        order_id: run.order_id,
        run_id: runId,
        entity: "run",
        from_status: "running",
        to_status: "running",
        message: phase,
      });
    });
  }

  async setRunFacts(runId: number, facts: RunFacts): Promise<void> {
    await this.db.updateTable("runs").set(facts).where("id", "=", runId).execute();
  }

  /** Records that a candidate in the merge queue took part in its `rounds`-th test. */
  async recordQueueRound(runId: number, rounds: number): Promise<void> {
    await this.db
      .updateTable("runs")
      .set({ queue_rounds: sql<number>`greatest(queue_rounds, ${rounds})` })
      .where("id", "=", runId)
      .execute();
  }

  async appendEvents(runId: number, events: { kind: string; payload: unknown }[]): Promise<void> {
    if (events.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      const last = await tx
        .selectFrom("run_events")
        .select((eb) => eb.fn.max("seq").as("seq"))
        .where("run_id", "=", runId)
        .executeTakeFirst();
      let seq = Number(last?.seq ?? 0);
      await tx
        .insertInto("run_events")
        .values(
          events.map((e) => ({
            run_id: runId,
            seq: ++seq,
            kind: e.kind,
            // PostgreSQL's json cannot hold NUL (a tool's output of /proc/*/environ has them).
            payload: JSON.stringify(e.payload ?? null, withoutNul),
          })),
        )
        .execute();
    });
  }

  async recordGate(result: Omit<NewGateResult, "id" | "at">): Promise<void> {
    await this.db.insertInto("gate_results").values(result).execute();
  }

  /**
   * Closes a run and moves its order on, in one transaction: landed (with the merge row), back to
   * the queue with feedback for a retry, or failed. A run that is no longer `running` (taken back
   * after its lease expired) is not touched, so a late finisher cannot overwrite the recovery.
   */
  async finishRun(runId: number, ending: RunEnding): Promise<{ order: WorkOrder; run: Run }> {
    return this.db.transaction().execute(async (tx) => {
      const runStatus: RunStatus =
        ending.outcome === "landed"
          ? "landed"
          : ending.outcome === "requeue"
            ? "failed"
            : ending.runStatus;
      const run = await tx
        .updateTable("runs")
        .set({
          status: runStatus,
          phase: "done",
          outcome_reason: ending.reason,
          ended_at: new Date(),
          ...(ending.outcome === "landed" ? { merge_commit: ending.landedCommit } : {}),
        })
        .where("id", "=", runId)
        .where("status", "=", "running")
        .returningAll()
        .executeTakeFirst();
      if (!run) throw new NightshiftError("run_not_running", `run ${runId} is no longer running`);
      const orderStatus: OrderStatus =
        ending.outcome === "landed" ? "landed" : ending.outcome === "failed" ? "failed" : "queued";
      const order = await tx
        .updateTable("work_orders")
        .set((eb) => ({
          status: orderStatus,
          updated_at: new Date(),
          ...(ending.outcome === "landed"
            ? { landed_commit: ending.landedCommit, failure_reason: null }
            : ending.outcome === "requeue"
              ? { attempts: eb("attempts", "-", 1) }
              : { feedback: ending.feedback ?? null }),
          ...(ending.outcome === "failed" ? { failure_reason: ending.reason } : {}),
        }))
        .where("id", "=", run.order_id)
        .returningAll()
        .executeTakeFirstOrThrow();
      if (ending.outcome === "landed") {
        await tx
          .insertInto("merges")
          .values({
            order_id: run.order_id,
            run_id: runId,
            previous_main: ending.previousMain,
            landed_commit: ending.landedCommit,
          })
          .execute();
      }
      await recordTransition(tx, {
        order_id: run.order_id,
        run_id: runId,
        entity: "run",
        from_status: "running",
        to_status: runStatus,
        message: ending.reason,
      });
      await recordTransition(tx, {
        order_id: run.order_id,
        entity: "order",
        from_status: "running",
        to_status: orderStatus,
        message: ending.reason,
      });
      return { order, run };
    });
  }

  /**
   * Runs of other workers whose lease ran out: what the timekeeper of a live worker looks for on
   * every turn of its loop (one indexed query, see runs_live). A worker's own runs are left to its
   * heartbeat, which stops a run whose lease it lost.
   */
  async expiredLeases(exceptWorker: string, now = new Date()): Promise<ExpiredLease[]> {
    return this.db
      .selectFrom("runs")
      .select(["id", "order_id", "worker_id", "phase", "lease_expires_at"])
      .where("status", "=", "running")
      .where("lease_expires_at", "<", now)
      .where("worker_id", "<>", exceptWorker)
      .orderBy("id")
      .execute();
  }

  /**
   * Takes back runs whose worker died. A run whose rebased commit already reached main is
   * completed as landed (the process died between moving main and recording it). With `adopt`, a
   * run that died in the merge queue with a gate-passed candidate is taken over by the caller (see
   * adoptRun) so that its candidate goes back in the queue, returned in queue order; any other is
   * abandoned and its order queued again, without counting the lost attempt.
   * `all` ignores leases: right for the embedded ledger, whose lock proves no other worker lives.
   * `workerId` takes back that worker's own runs too (it is shutting down); `exceptWorker` leaves
   * that worker's runs alone even when their lease expired (a live worker's timekeeper: its own
   * runs are its heartbeat's business). Several workers may recover at once: each run is taken
   * back by exactly one of them, the others skip it.
   */
  async recoverRuns(options: {
    all: boolean;
    workerId?: string;
    exceptWorker?: string;
    hasLanded: (commit: string) => Promise<boolean>;
    adopt?: AdoptOptions & {
      /** A run adopted this many times already is abandoned instead (it may be what kills us). */
      maxAdoptions: number;
      /** Whether the caller can still put this run's candidate back in the queue. */
      canResume: (run: Run) => Promise<boolean>;
    };
    /**
     * Shutting down: leave runs whose candidate waits in the merge queue running, with their lease
     * expired, so that the next start (of this worker or another) adopts them.
     */
    park?: boolean;
  }): Promise<{ run: Run; outcome: "landed" | "requeued" | "adopted" | "parked" }[]> {
    let query = this.db.selectFrom("runs").selectAll().where("status", "=", "running");
    if (!options.all) {
      query = query.where((eb) =>
        eb.or([
          eb("lease_expires_at", "<", new Date()),
          ...(options.workerId ? [eb("worker_id", "=", options.workerId)] : []),
        ]),
      );
    }
    if (options.exceptWorker) query = query.where("worker_id", "<>", options.exceptWorker);
    const stale = await query.orderBy("queue_seq").orderBy("id").execute();
    const recovered: { run: Run; outcome: "landed" | "requeued" | "adopted" | "parked" }[] = [];
    for (const run of stale) {
      if (run.merge_commit && (await options.hasLanded(run.merge_commit))) {
        const previousMain = run.base_commit ?? run.merge_commit;
        const done = await this.finishRun(run.id, {
          outcome: "landed",
          reason: "landed (recorded after restart)",
          previousMain,
          landedCommit: run.merge_commit,
        }).catch((error: unknown) => {
          // Another worker's timekeeper recorded it first.
          if (isNightshiftError(error) && error.code === "run_not_running") return undefined;
          throw error;
        });
        if (done) recovered.push({ run: done.run, outcome: "landed" });
        continue;
      }
      if (options.park && run.phase === "merging" && run.candidate_commit) {
        const parked = await this.parkRun(run);
        if (parked) recovered.push({ run: parked, outcome: "parked" });
        continue;
      }
      const adopt = options.adopt;
      if (
        adopt &&
        run.phase === "merging" &&
        run.candidate_commit &&
        run.adoptions < adopt.maxAdoptions &&
        (await adopt.canResume(run))
      ) {
        const adopted = await this.adoptRun(run, adopt);
        if (adopted) recovered.push({ run: adopted, outcome: "adopted" });
        continue;
      }
      const abandoned = await this.abandonRun(run);
      if (abandoned) recovered.push({ run: abandoned, outcome: "requeued" });
    }
    return recovered;
  }

  /** Expires a queued run's lease now, in one transaction with its transition (see `park`). */
  private async parkRun(run: Run): Promise<Run | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const parked = await tx
        .updateTable("runs")
        .set({ lease_expires_at: new Date(Date.now() - 1) })
        .where("id", "=", run.id)
        .where("status", "=", "running")
        .where("worker_id", "=", run.worker_id)
        .returningAll()
        .executeTakeFirst();
      if (!parked) return undefined;
      await recordTransition(tx, {
        order_id: run.order_id,
        run_id: run.id,
        entity: "run",
        from_status: "running",
        to_status: "running",
        message: "left in the merge queue for the next start",
      });
      return parked;
    });
  }

  /**
   * Takes over a run whose worker died while its candidate was in the merge queue: the run gets
   * a fresh lease under `workerId`, in one transaction, and stays `running` in phase `merging` so
   * that the new worker lands or ejects its candidate. Only succeeds if the run is still exactly
   * as `run` read it (same worker, same lease): of two workers recovering it at once, one wins.
   */
  async adoptRun(run: Run, options: AdoptOptions): Promise<Run | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const adopted = await tx
        .updateTable("runs")
        .set((eb) => ({
          worker_id: options.workerId,
          lease_expires_at: new Date(Date.now() + options.leaseMs),
          adoptions: eb("adoptions", "+", 1),
        }))
        .where("id", "=", run.id)
        .where("status", "=", "running")
        .where("phase", "=", "merging")
        .where("worker_id", "=", run.worker_id)
        .where("lease_expires_at", "=", run.lease_expires_at)
        .returningAll()
        .executeTakeFirst();
      if (!adopted) return undefined;
      await recordTransition(tx, {
        order_id: run.order_id,
        run_id: run.id,
        entity: "run",
        from_status: "running",
        to_status: "running",
        message: `adopted by worker ${options.workerId} after worker ${run.worker_id} stopped; candidate back in the merge queue`,
      });
      return adopted;
    });
  }

  /**
   * Gives up on a run still `running` (e.g. an adopted candidate that could not be put back in the
   * queue): the order is queued again without counting the attempt.
   */
  async abandon(runId: number, reason: string): Promise<Run | undefined> {
    const run = await this.db
      .selectFrom("runs")
      .selectAll()
      .where("id", "=", runId)
      .executeTakeFirst();
    return run?.status === "running" ? this.abandonRun(run, reason) : undefined;
  }

  /** Undefined when the run is no longer running (another worker recovered it first). */
  private async abandonRun(run: Run, why?: string): Promise<Run | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const reason = `${why ?? `worker ${run.worker_id} stopped during ${run.phase}`}; order queued again`;
      const abandoned = await tx
        .updateTable("runs")
        .set({ status: "abandoned", phase: "done", outcome_reason: reason, ended_at: new Date() })
        .where("id", "=", run.id)
        .where("status", "=", "running")
        .returningAll()
        .executeTakeFirst();
      if (!abandoned) return undefined;
      await tx
        .updateTable("work_orders")
        .set((eb) => ({
          status: "queued",
          attempts: eb("attempts", "-", 1),
          updated_at: new Date(),
        }))
        .where("id", "=", run.order_id)
        .where("status", "=", "running")
        .execute();
      await recordTransition(tx, {
        order_id: run.order_id,
        run_id: run.id,
        entity: "run",
        from_status: "running",
        to_status: "abandoned",
        message: reason,
      });
      await recordTransition(tx, {
        order_id: run.order_id,
        entity: "order",
        from_status: "running",
        to_status: "queued",
        message: reason,
      });
      return abandoned;
    });
  }

  // ── metering ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Records a batch of metered model requests, adds their usage to their runs and to their budget
   * accounts, and releases what they had reserved, in one transaction: a request is either fully
   * metered or not at all (and then retried by the caller). The unique request_id makes a retried
   * batch idempotent.
   */
  async recordModelRequests(rows: NewModelRequest[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      // One JSON parameter instead of fifteen per row: on the embedded ledger this is much faster.
      const inserted = await sql<{
        request_id: string;
        run_id: number | null;
        order_id: number | null;
        input_tokens: number;
        output_tokens: number;
        cost_usd: number;
      }>`
        insert into model_requests (request_id, run_id, order_id, protocol, model, status, stream,
          input_tokens, output_tokens, cached_input_tokens, cost_usd, usage_estimated, latency_ms,
          attempts, error)
        select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(request_id text,
          run_id integer, order_id integer, protocol text, model text, status integer,
          stream boolean, input_tokens integer, output_tokens integer, cached_input_tokens integer,
          cost_usd double precision, usage_estimated boolean, latency_ms integer, attempts integer,
          error text)
        on conflict (request_id) do nothing
        returning request_id, run_id, order_id, input_tokens, output_tokens, cost_usd`
        .execute(tx)
        .then((result) => result.rows);
      const perRun = new Map<number, { input: number; output: number; cost: number }>();
      for (const row of inserted) {
        if (row.run_id === null) continue;
        const sum = perRun.get(row.run_id) ?? { input: 0, output: 0, cost: 0 };
        sum.input += row.input_tokens;
        sum.output += row.output_tokens;
        sum.cost += row.cost_usd;
        perRun.set(row.run_id, sum);
      }
      for (const [runId, sum] of perRun) {
        await tx
          .updateTable("runs")
          .set((eb) => ({
            input_tokens: eb("input_tokens", "+", sum.input),
            output_tokens: eb("output_tokens", "+", sum.output),
            cost_usd: eb("cost_usd", "+", sum.cost),
          }))
          .where("id", "=", runId)
          .execute();
      }
      await settleBudgets(tx, inserted);
    });
  }

  /**
   * Keeps a metered row the ledger refuses (with the reason) and releases its reservation, so one
   * bad row cannot hold back the rows behind it.
   */
  async deadLetterModelRequest(row: NewModelRequest, reason: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto("model_request_dead_letters")
        .values({
          request_id: row.request_id,
          row: JSON.stringify(row, withoutNul),
          reason: reason.replaceAll("\0", ""),
        })
        .execute();
      await settleBudgets(tx, [
        {
          request_id: row.request_id,
          run_id: null,
          order_id: null,
          input_tokens: 0,
          output_tokens: 0,
          cost_usd: 0,
        },
      ]);
    });
  }

  async listDeadLetters(): Promise<ModelRequestDeadLetter[]> {
    return this.db.selectFrom("model_request_dead_letters").selectAll().orderBy("id").execute();
  }

  // ── budgets ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Reserves budget for requests about to be forwarded, in order, in one transaction: each is
   * admitted only if, on every account it names, what is spent plus what is reserved plus its own
   * amount stays within the limit. The accounts are locked (in key order, so two gateways cannot
   * deadlock) for the whole decision, so gateways sharing one PostgreSQL cannot both admit the
   * request that would overrun a budget.
   */
  async reserveBudgets(holds: BudgetHold[]): Promise<BudgetVerdict[]> {
    if (holds.length === 0) return [];
    const keys = [...new Set(holds.flatMap((h) => h.accounts.map((a) => a.key)))].sort();
    return this.db.transaction().execute(async (tx) => {
      const accounts = await lockAccounts(tx, keys);
      const changed = new Set<string>();
      const admitted: BudgetHold[] = [];
      const verdicts = holds.map((hold): BudgetVerdict => {
        for (const limit of hold.accounts) {
          const account = accounts.get(limit.key) as BudgetAccount;
          for (const unit of ["tokens", "usd"] as const) {
            const max = limit[unit];
            if (max === undefined) continue;
            const spent = unit === "tokens" ? account.spentTokens : account.spentUsd;
            const reserved = unit === "tokens" ? account.reservedTokens : account.reservedUsd;
            if (spent + reserved + hold[unit] > max) {
              return {
                admitted: false,
                key: limit.key,
                unit,
                spent,
                reserved,
                limit: max,
                requested: hold[unit],
              };
            }
          }
        }
        for (const limit of hold.accounts) {
          const account = accounts.get(limit.key) as BudgetAccount;
          account.reservedTokens += hold.tokens;
          account.reservedUsd += hold.usd;
          changed.add(limit.key);
        }
        admitted.push(hold);
        return { admitted: true };
      });
      if (admitted.length === 0) return verdicts;
      const updates = [...changed].map((key) => {
        const a = accounts.get(key) as BudgetAccount;
        return { key, reserved_tokens: a.reservedTokens, reserved_usd: a.reservedUsd };
      });
      await sql`
        update budget_accounts b
        set reserved_tokens = r.reserved_tokens, reserved_usd = r.reserved_usd
        from jsonb_to_recordset(${JSON.stringify(updates)}::jsonb)
          as r(key text, reserved_tokens bigint, reserved_usd double precision)
        where b.key = r.key`.execute(tx);
      const now = Date.now();
      const reservations = admitted.map((h) => ({
        request_id: h.requestId,
        accounts: h.accounts.map((a) => a.key),
        tokens: h.tokens,
        usd: h.usd,
        day: h.day,
        expires_at: new Date(now + h.ttlMs).toISOString(),
      }));
      await sql`
        insert into budget_reservations (request_id, accounts, tokens, usd, day, expires_at)
        select * from jsonb_to_recordset(${JSON.stringify(reservations)}::jsonb)
          as r(request_id text, accounts jsonb, tokens bigint, usd double precision, day text,
            expires_at timestamptz)
        on conflict (request_id) do nothing`.execute(tx);
      return verdicts;
    });
  }

  /**
   * Releases reservations whose gateway never metered them (it died, say) once they expire, so a
   * crashed process cannot hold a budget forever. Returns how many were released.
   */
  async releaseExpiredReservations(now = new Date()): Promise<number> {
    return this.db.transaction().execute(async (tx) => {
      const expired = await sql<{ request_id: string }>`
        select request_id from budget_reservations where expires_at < ${now.toISOString()}::timestamptz
        order by request_id limit 1000`.execute(tx);
      if (expired.rows.length === 0) return 0;
      await settleBudgets(
        tx,
        expired.rows.map((r) => ({
          request_id: r.request_id,
          run_id: null,
          order_id: null,
          input_tokens: 0,
          output_tokens: 0,
          cost_usd: 0,
        })),
      );
      return expired.rows.length;
    });
  }

  /** The budget accounts by key (missing ones are empty). */
  async budgetAccounts(keys: string[]): Promise<Map<string, BudgetAccount>> {
    const rows = await sql<AccountRow>`
      select key, spent_tokens::float8 as spent_tokens, spent_usd,
        reserved_tokens::float8 as reserved_tokens, reserved_usd
      from budget_accounts
      where key in (select jsonb_array_elements_text(${JSON.stringify(keys)}::jsonb))`.execute(
      this.db,
    );
    const found = new Map(rows.rows.map((r) => [r.key, toAccount(r)]));
    for (const key of keys) if (!found.has(key)) found.set(key, emptyAccount(key));
    return found;
  }

  /** Spend so far, to seed the gateway's budgets after a restart. */
  async spend(scope: { orderId?: number; runId?: number; since?: Date }): Promise<SpendTotals> {
    let query = this.db
      .selectFrom("model_requests")
      .select((eb) => [
        eb.fn.coalesce(eb.fn.sum<string>("cost_usd"), sql<string>`0`).as("cost"),
        eb.fn.coalesce(eb.fn.sum<string>("input_tokens"), sql<string>`0`).as("input"),
        eb.fn.coalesce(eb.fn.sum<string>("output_tokens"), sql<string>`0`).as("output"),
        eb.fn.countAll<string>().as("requests"),
      ]);
    if (scope.orderId !== undefined) query = query.where("order_id", "=", scope.orderId);
    if (scope.runId !== undefined) query = query.where("run_id", "=", scope.runId);
    if (scope.since) query = query.where("at", ">=", scope.since);
    const row = await query.executeTakeFirstOrThrow();
    return {
      costUsd: Number(row.cost),
      tokens: Number(row.input) + Number(row.output),
      requests: Number(row.requests),
    };
  }

  async listModelRequests(runId?: number): Promise<ModelRequest[]> {
    let query = this.db.selectFrom("model_requests").selectAll();
    if (runId !== undefined) query = query.where("run_id", "=", runId);
    return query.orderBy("id").execute();
  }

  // ── reading ──────────────────────────────────────────────────────────────────────────────────

  async getRun(id: number): Promise<Run | undefined> {
    return this.db.selectFrom("runs").selectAll().where("id", "=", id).executeTakeFirst();
  }

  async getOrder(id: number): Promise<WorkOrder | undefined> {
    return this.db.selectFrom("work_orders").selectAll().where("id", "=", id).executeTakeFirst();
  }

  async listOrders(): Promise<WorkOrder[]> {
    return this.db.selectFrom("work_orders").selectAll().orderBy("id").execute();
  }

  async listRuns(orderId?: number): Promise<Run[]> {
    let query = this.db.selectFrom("runs").selectAll();
    if (orderId !== undefined) query = query.where("order_id", "=", orderId);
    return query.orderBy("id").execute();
  }

  async listGateResults(runId: number): Promise<GateResult[]> {
    return this.db
      .selectFrom("gate_results")
      .selectAll()
      .where("run_id", "=", runId)
      .orderBy("id")
      .execute();
  }

  // ── defects ───────────────────────────────────────────────────────────────────────────────────

  /** Raises a defect; a run raises each kind at most once (returns undefined the second time). */
  async raiseDefect(defect: {
    kind: string;
    orderId?: number;
    runId?: number;
    summary: string;
    evidence: unknown;
  }): Promise<Defect | undefined> {
    return this.db
      .insertInto("defects")
      .values({
        kind: defect.kind,
        order_id: defect.orderId ?? null,
        run_id: defect.runId ?? null,
        summary: defect.summary,
        evidence: JSON.stringify(defect.evidence ?? null),
      })
      .onConflict((oc) =>
        oc.columns(["run_id", "kind"]).where("run_id", "is not", null).doNothing(),
      )
      .returningAll()
      .executeTakeFirst();
  }

  async listDefects(options: { status?: "open" | "closed" } = {}): Promise<Defect[]> {
    let query = this.db.selectFrom("defects").selectAll().orderBy("id");
    if (options.status) query = query.where("status", "=", options.status);
    return query.execute();
  }

  async listEvents(runId: number) {
    return this.db
      .selectFrom("run_events")
      .selectAll()
      .where("run_id", "=", runId)
      .orderBy("seq")
      .execute();
  }

  async listMerges() {
    return this.db.selectFrom("merges").selectAll().orderBy("id").execute();
  }

  async listTransitions(orderId?: number): Promise<Transition[]> {
    let query = this.db.selectFrom("transitions").selectAll();
    if (orderId !== undefined) query = query.where("order_id", "=", orderId);
    return query.orderBy("id").execute();
  }

  async totals(): Promise<LedgerTotals> {
    const counts = await this.db
      .selectFrom("work_orders")
      .select(["status", (eb) => eb.fn.countAll<string>().as("n")])
      .groupBy("status")
      .execute();
    const orders: Record<OrderStatus, number> = {
      waiting: 0,
      queued: 0,
      running: 0,
      landed: 0,
      failed: 0,
      cancelled: 0,
    };
    for (const row of counts) orders[row.status] = Number(row.n);
    const runs = await this.db
      .selectFrom("runs")
      .select((eb) => [
        eb.fn.countAll<string>().as("runs"),
        eb.fn.coalesce(eb.fn.sum<string>("input_tokens"), sql<string>`0`).as("input"),
        eb.fn.coalesce(eb.fn.sum<string>("output_tokens"), sql<string>`0`).as("output"),
        eb.fn.coalesce(eb.fn.sum<string>("cost_usd"), sql<string>`0`).as("cost"),
      ])
      .executeTakeFirstOrThrow();
    return {
      orders,
      runs: Number(runs.runs),
      inputTokens: Number(runs.input),
      outputTokens: Number(runs.output),
      costUsd: Number(runs.cost),
    };
  }
}

export interface AdoptOptions {
  /** The worker taking the run over, and the lease it gets. */
  workerId: string;
  leaseMs: number;
}

export type RunFacts = Partial<
  Pick<Run, "workspace_path" | "branch" | "base_commit" | "candidate_commit" | "merge_commit">
>;

function orderError(message: string): NightshiftError {
  return new NightshiftError("order_invalid", message, {
    hint: "fix the order (or backlog file) and add it again; nothing was added",
  });
}

function withoutNul(_key: string, value: unknown): unknown {
  return typeof value === "string" ? value.replaceAll("\0", "\uFFFD") : value;
}

interface AccountRow {
  key: string;
  spent_tokens: number;
  spent_usd: number;
  reserved_tokens: number;
  reserved_usd: number;
}

function toAccount(r: AccountRow): BudgetAccount {
  return {
    key: r.key,
    spentTokens: Number(r.spent_tokens),
    spentUsd: Number(r.spent_usd),
    reservedTokens: Number(r.reserved_tokens),
    reservedUsd: Number(r.reserved_usd),
  };
}

function emptyAccount(key: string): BudgetAccount {
  return { key, spentTokens: 0, spentUsd: 0, reservedTokens: 0, reservedUsd: 0 };
}

/** Creates missing accounts and locks them all, in key order, for the rest of the transaction. */
async function lockAccounts(tx: Db, keys: string[]): Promise<Map<string, BudgetAccount>> {
  const json = JSON.stringify(keys);
  await sql`
    insert into budget_accounts (key)
    select k from jsonb_array_elements_text(${json}::jsonb) as t(k) order by k
    on conflict (key) do nothing`.execute(tx);
  const rows = await sql<AccountRow>`
    select key, spent_tokens::float8 as spent_tokens, spent_usd,
      reserved_tokens::float8 as reserved_tokens, reserved_usd
    from budget_accounts
    where key in (select jsonb_array_elements_text(${json}::jsonb))
    order by key
    for update`.execute(tx);
  return new Map(rows.rows.map((r) => [r.key, toAccount(r)]));
}

const utcDay = (date: Date) => date.toISOString().slice(0, 10);

/**
 * Charges metered rows to their budget accounts and releases their reservations, in the caller's
 * transaction. A row is charged to the day its reservation was made on (or today without one).
 */
async function settleBudgets(
  tx: Db,
  rows: {
    request_id: string;
    run_id: number | null;
    order_id: number | null;
    input_tokens: number;
    output_tokens: number;
    cost_usd: number;
  }[],
): Promise<void> {
  if (rows.length === 0) return;
  const released = await sql<{
    request_id: string;
    accounts: string[] | string;
    tokens: string;
    usd: number;
    day: string;
  }>`
    delete from budget_reservations
    where request_id in (select jsonb_array_elements_text(${JSON.stringify(rows.map((r) => r.request_id))}::jsonb))
    returning request_id, accounts, tokens::float8 as tokens, usd, day`.execute(tx);
  const deltas = new Map<string, { st: number; su: number; rt: number; ru: number }>();
  const delta = (key: string) => {
    let d = deltas.get(key);
    if (!d) {
      d = { st: 0, su: 0, rt: 0, ru: 0 };
      deltas.set(key, d);
    }
    return d;
  };
  const dayOf = new Map<string, string>();
  for (const r of released.rows) {
    dayOf.set(r.request_id, r.day);
    const accounts =
      typeof r.accounts === "string" ? (JSON.parse(r.accounts) as string[]) : r.accounts;
    for (const key of accounts) {
      const d = delta(key);
      d.rt -= Number(r.tokens);
      d.ru -= Number(r.usd);
    }
  }
  const today = utcDay(new Date());
  for (const row of rows) {
    const tokens = row.input_tokens + row.output_tokens;
    if (tokens === 0 && row.cost_usd === 0) continue;
    const keys = budgetAccountKeys(
      { runId: row.run_id, orderId: row.order_id },
      dayOf.get(row.request_id) ?? today,
    );
    for (const key of [keys.run, keys.order, keys.day, keys.total]) {
      if (key === undefined) continue;
      const d = delta(key);
      d.st += tokens;
      d.su += row.cost_usd;
    }
  }
  if (deltas.size === 0) return;
  const values = [...deltas]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, d]) => ({ key, st: d.st, su: d.su, rt: d.rt, ru: d.ru }));
  // Locked in key order, as reserveBudgets locks them, so the two never wait on each other in a cycle.
  await lockAccounts(
    tx,
    values.map((v) => v.key),
  );
  await sql`
    update budget_accounts b set
      spent_tokens = b.spent_tokens + r.st,
      spent_usd = b.spent_usd + r.su,
      reserved_tokens = greatest(0, b.reserved_tokens + r.rt),
      reserved_usd = greatest(0, b.reserved_usd + r.ru)
    from jsonb_to_recordset(${JSON.stringify(values)}::jsonb)
      as r(key text, st bigint, su double precision, rt bigint, ru double precision)
    where b.key = r.key`.execute(tx);
}
