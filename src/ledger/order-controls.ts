import type { Kysely, Updateable } from "kysely";
import { NightshiftError } from "../errors/index.ts";
import type {
  ControlRecord,
  Database,
  Defect,
  OrderStatus,
  Run,
  WorkOrder,
  WorkOrdersTable,
} from "./schema.ts";
import { type Db, lockOrder, recordTransition } from "./transitions.ts";

/** What a person can do to an order from the CLI (`nightshift retry 3`, ...). */
export type OrderAction = "retry" | "requeue" | "cancel" | "approve" | "reject";

/** The states each action applies to, and the state it leaves the order in. */
const MOVES: Record<OrderAction, { from: OrderStatus[]; to: OrderStatus; why: string }> = {
  retry: {
    from: ["failed", "cancelled"],
    to: "queued",
    why: "only a failed or cancelled order can be retried",
  },
  requeue: {
    from: ["running"],
    to: "queued",
    why: "only a running order (e.g. one whose worker is gone) can be requeued; a failed one is retried",
  },
  cancel: {
    from: ["waiting", "queued", "running", "failed"],
    to: "cancelled",
    why: "a landed or already cancelled order cannot be cancelled",
  },
  approve: {
    from: ["waiting"],
    to: "queued",
    why: "only an order waiting for a person can be approved",
  },
  reject: {
    from: ["waiting"],
    to: "cancelled",
    why: "only an order waiting for a person can be rejected",
  },
};

/**
 * A person's controls over orders and defects. Each is one transaction that checks the order's
 * state, moves it, and records the move (with who did it and why) in `transitions`, so the history
 * says what a person changed. A running order's live run is abandoned in the same transaction: the
 * worker holding it loses its lease on the next heartbeat and stops the run.
 */
export class OrderControls {
  constructor(private readonly db: Kysely<Database>) {}

  async apply(
    action: OrderAction,
    orderId: number,
    note = "",
    actor = "a person",
  ): Promise<WorkOrder> {
    const move = MOVES[action];
    const message = `${action} by ${actor}${note.trim() ? `: ${note.trim()}` : ""}`;
    return this.db.transaction().execute(async (tx) => {
      const order = await lockOrder(tx, orderId);
      if (!move.from.includes(order.status)) {
        throw new NightshiftError(
          "order_control_refused",
          `cannot ${action} WO-${orderId}: it is ${order.status}; ${move.why}`,
          {
            hint: "see `nightshift status`; nothing was changed",
            details: { status: order.status },
          },
        );
      }
      let changes: Updateable<WorkOrdersTable> = { status: move.to, updated_at: new Date() };
      if (order.status === "running") {
        await abandonLiveRuns(tx, orderId, message);
        // The abandoned run is not the order's fault: its attempt does not count.
        changes = { ...changes, attempts: Math.max(0, order.attempts - 1) };
      }
      if (action === "retry") changes = { ...changes, attempts: 0, failure_reason: null };
      if (move.to === "cancelled") changes = { ...changes, failure_reason: message };
      const moved = await tx
        .updateTable("work_orders")
        .set(changes)
        .where("id", "=", orderId)
        .returningAll()
        .executeTakeFirstOrThrow();
      if (action === "approve" || action === "reject") {
        await tx
          .updateTable("holdout_scenarios")
          .set({ status: action === "approve" ? "active" : "rejected" })
          .where("order_id", "=", orderId)
          .where("status", "=", "draft")
          .execute();
      }
      await recordTransition(tx, {
        order_id: orderId,
        entity: "order",
        from_status: order.status,
        to_status: move.to,
        message,
      });
      await recordControl(tx, { action, order_id: orderId, actor, note });
      return moved;
    });
  }

  /**
   * Stops a running run: the run is abandoned (its worker loses the lease on its next heartbeat
   * and kills the agent) and its order waits for a person, who approves (queues it again) or
   * rejects (cancels) it. The stopped attempt does not count against the order.
   */
  async stopRun(
    runId: number,
    note = "",
    actor = "a person",
  ): Promise<{ order: WorkOrder; run: Run }> {
    return this.db.transaction().execute(async (tx) => {
      const found = await tx
        .selectFrom("runs")
        .select(["order_id"])
        .where("id", "=", runId)
        .executeTakeFirst();
      if (!found) {
        throw new NightshiftError("run_not_found", `there is no run ${runId}`, {
          hint: "see `nightshift status --json` or the console for the runs and their numbers",
        });
      }
      const order = await lockOrder(tx, found.order_id);
      const run = await tx
        .selectFrom("runs")
        .selectAll()
        .where("id", "=", runId)
        .executeTakeFirstOrThrow();
      if (run.status !== "running") {
        throw new NightshiftError(
          "run_control_refused",
          `cannot stop run ${runId}: it is ${run.status}; only a running run can be stopped`,
          { hint: "nothing was changed", details: { status: run.status } },
        );
      }
      const message = `stopped by ${actor}${note.trim() ? `: ${note.trim()}` : ""}`;
      await abandonLiveRuns(tx, order.id, message);
      const moved = await tx
        .updateTable("work_orders")
        .set({
          status: "waiting",
          attempts: Math.max(0, order.attempts - 1),
          updated_at: new Date(),
        })
        .where("id", "=", order.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordTransition(tx, {
        order_id: order.id,
        entity: "order",
        from_status: order.status,
        to_status: "waiting",
        message,
      });
      await recordControl(tx, { action: "stop", order_id: order.id, run_id: runId, actor, note });
      const stopped = await tx
        .selectFrom("runs")
        .selectAll()
        .where("id", "=", runId)
        .executeTakeFirstOrThrow();
      return { order: moved, run: stopped };
    });
  }

  /**
   * Changes what the scheduler and the gateway read of an order: its priority (higher runs first)
   * and its token budget per run (null: the factory's). Only an order that has not ended.
   */
  async amend(
    orderId: number,
    change: { priority?: number; budgetTokens?: number | null },
    note = "",
    actor = "a person",
  ): Promise<WorkOrder> {
    return this.db.transaction().execute(async (tx) => {
      const order = await lockOrder(tx, orderId);
      if (["landed", "cancelled"].includes(order.status)) {
        throw new NightshiftError(
          "order_control_refused",
          `cannot change WO-${orderId}: it is ${order.status}`,
          {
            hint: "only an order that has not landed or been cancelled can be changed; nothing was changed",
          },
        );
      }
      const set: Updateable<WorkOrdersTable> = { updated_at: new Date() };
      if (change.priority !== undefined) set.priority = change.priority;
      if (change.budgetTokens !== undefined) set.budget_tokens = change.budgetTokens;
      const moved = await tx
        .updateTable("work_orders")
        .set(set)
        .where("id", "=", orderId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordControl(tx, {
        action: change.priority !== undefined ? "priority" : "budget",
        order_id: orderId,
        actor,
        note,
        details: {
          ...(change.priority !== undefined ? { priority: [order.priority, change.priority] } : {}),
          ...(change.budgetTokens !== undefined
            ? { budgetTokens: [order.budget_tokens, change.budgetTokens] }
            : {}),
        },
      });
      return moved;
    });
  }

  /** The controls people used, newest first. */
  async history(limit = 200): Promise<ControlRecord[]> {
    return this.db.selectFrom("controls").selectAll().orderBy("id", "desc").limit(limit).execute();
  }

  /** Closes an open defect, keeping when and why. */
  async closeDefect(defectId: number, note = "", actor = "a person"): Promise<Defect> {
    const closed = await this.db.transaction().execute(async (tx) => {
      const row = await tx
        .updateTable("defects")
        .set({ status: "closed", closed_at: new Date(), close_note: note.trim() || null })
        .where("id", "=", defectId)
        .where("status", "=", "open")
        .returningAll()
        .executeTakeFirst();
      if (row) {
        await recordControl(tx, {
          action: "close-defect",
          order_id: row.order_id,
          run_id: row.run_id,
          actor,
          note,
          details: { defect: row.id },
        });
      }
      return row;
    });
    if (closed) return closed;
    const exists = await this.db
      .selectFrom("defects")
      .select("status")
      .where("id", "=", defectId)
      .executeTakeFirst();
    throw new NightshiftError(
      exists ? "defect_already_closed" : "defect_not_found",
      exists ? `defect D-${defectId} is already closed` : `there is no defect D-${defectId}`,
      { hint: "see `nightshift status` for the open defects" },
    );
  }
}

async function abandonLiveRuns(tx: Db, orderId: number, message: string): Promise<void> {
  const runs = await tx
    .updateTable("runs")
    .set({ status: "abandoned", phase: "done", outcome_reason: message, ended_at: new Date() })
    .where("order_id", "=", orderId)
    .where("status", "=", "running")
    .returning(["id"])
    .execute();
  for (const run of runs) {
    await recordTransition(tx, {
      order_id: orderId,
      run_id: run.id,
      entity: "run",
      from_status: "running",
      to_status: "abandoned",
      message,
    });
  }
}

/** One row in `controls`: who used which control on what, written in the control's transaction. */
export function recordControl(
  tx: Db,
  row: {
    action: string;
    order_id?: number | null;
    run_id?: number | null;
    actor: string;
    note?: string;
    details?: Record<string, unknown>;
  },
) {
  return tx
    .insertInto("controls")
    .values({
      action: row.action,
      order_id: row.order_id ?? null,
      run_id: row.run_id ?? null,
      actor: row.actor,
      note: row.note?.trim() ?? "",
      details: JSON.stringify(row.details ?? {}),
    })
    .execute();
}
