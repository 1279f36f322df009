import { type Kysely, sql } from "kysely";
import { AcceptanceRecords } from "./acceptance.ts";
import { BudgetLimitBook } from "./budget-limits.ts";
import { BudgetBook } from "./budgets.ts";
import {
  type AgentChoice,
  type Claim,
  type ClaimOptions,
  claimNext,
  failBlockedOrders,
  heartbeat,
  pendingAgentChoices,
} from "./claims.ts";
import { addOrders, cancelOrder, type NewWorkOrder } from "./intake.ts";
import { LineSwitch } from "./line-state.ts";
import { Metering } from "./metering.ts";
import { OrderControls } from "./order-controls.ts";
import { RunRecovery } from "./recovery.ts";
import {
  appendEvents,
  finishRun,
  type RunEnding,
  type RunFacts,
  recordGate,
  recordQueueRound,
  setRunFacts,
  setRunPhase,
} from "./runs.ts";
import type {
  Database,
  Defect,
  GateResult,
  NewGateResult,
  OrderStatus,
  Run,
  RunPhase,
  Transition,
  WorkOrder,
} from "./schema.ts";
import { WorkerRoster } from "./workers.ts";

/**
 * Tells a waiting worker that an order may have become claimable (see 0008_wakeups.sql); resolves
 * to its unsubscribe. `onError` hears that the wake-ups stopped (a lost connection): the worker
 * then finds work by polling alone.
 */
export type WakeupSource = (
  onWake: () => void,
  onError: (error: unknown) => void,
) => Promise<() => Promise<void>>;

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
  /** Taking back runs whose worker died: requeued, adopted or parked. */
  readonly recovery: RunRecovery;
  /** Metered model requests and their dead letters. */
  readonly metering: Metering;
  /** Budget accounts and reservations. */
  readonly budgets: BudgetBook;
  /** The factory's spending limits people override live, over nightshift.toml's. */
  readonly budgetLimits: BudgetLimitBook;
  /** Whether the line takes new runs (pause/resume), for every worker sharing the ledger. */
  readonly line: LineSwitch;
  /** The workers sharing the ledger, with their heartbeats, and the single merge leader. */
  readonly workers: WorkerRoster;

  private readonly wakeups: WakeupSource | undefined;
  /** Where claims run: connections of their own on a server (see open.ts), else `db`. */
  private readonly claimsDb: Kysely<Database>;

  constructor(
    readonly db: Kysely<Database>,
    private readonly closeFn: () => Promise<void>,
    options: { wakeups?: WakeupSource; claimsDb?: Kysely<Database> } = {},
  ) {
    this.wakeups = options.wakeups;
    this.claimsDb = options.claimsDb ?? db;
    this.controls = new OrderControls(db);
    this.acceptance = new AcceptanceRecords(db);
    this.recovery = new RunRecovery(db);
    this.metering = new Metering(db);
    this.budgets = new BudgetBook(db);
    this.budgetLimits = new BudgetLimitBook(db);
    this.line = new LineSwitch(db);
    this.workers = new WorkerRoster(db);
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

  // ── intake (SQL in intake.ts) ─────────────────────────────────────────────────────────────────

  /** Adds orders all-or-nothing; dependencies must name keys in this batch or already queued. */
  addOrders(orders: NewWorkOrder[]): Promise<WorkOrder[]> {
    return addOrders(this.db, orders);
  }

  cancelOrder(id: number, reason: string): Promise<WorkOrder> {
    return cancelOrder(this.db, id, reason);
  }

  // ── claiming (SQL in claims.ts) ───────────────────────────────────────────────────────────────

  /** Opens a run under a lease on the most urgent claimable order (see claims.ts). */
  claimNext(options: ClaimOptions): Promise<Claim | null> {
    return claimNext(this.claimsDb, options);
  }

  /** Every driver and model that orders still to run will use (see claims.ts). */
  pendingAgentChoices(defaults: AgentChoice): Promise<AgentChoice[]> {
    return pendingAgentChoices(this.db, defaults);
  }

  /** Orders that can never start because a dependency failed or was cancelled become failed. */
  failBlockedOrders(): Promise<WorkOrder[]> {
    return failBlockedOrders(this.db);
  }

  /** Renews a run's lease; false when the lease was lost (the run was taken back meanwhile). */
  heartbeat(runId: number, workerId: string, leaseMs: number): Promise<boolean> {
    return heartbeat(this.db, runId, workerId, leaseMs);
  }

  // ── a run's progress (SQL in runs.ts) ─────────────────────────────────────────────────────────

  setRunPhase(runId: number, phase: RunPhase, facts: RunFacts = {}): Promise<void> {
    return setRunPhase(this.db, runId, phase, facts);
  }

  setRunFacts(runId: number, facts: RunFacts): Promise<void> {
    return setRunFacts(this.db, runId, facts);
  }

  /** Records that a candidate in the merge queue took part in its `rounds`-th test. */
  recordQueueRound(runId: number, rounds: number): Promise<void> {
    return recordQueueRound(this.db, runId, rounds);
  }

  appendEvents(runId: number, events: { kind: string; payload: unknown }[]): Promise<void> {
    return appendEvents(this.db, runId, events);
  }

  recordGate(result: Omit<NewGateResult, "id" | "at">): Promise<void> {
    return recordGate(this.db, result);
  }

  /** Closes a run and moves its order on, in one transaction (see runs.ts). */
  finishRun(runId: number, ending: RunEnding): Promise<{ order: WorkOrder; run: Run }> {
    return finishRun(this.db, runId, ending);
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
      proposed: 0,
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
