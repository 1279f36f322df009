import type { Kysely, Updateable } from "kysely";
import { NightshiftError } from "../errors/index.ts";
import type { Database, Defect, OrderStatus, WorkOrder, WorkOrdersTable } from "./schema.ts";
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

  async apply(action: OrderAction, orderId: number, note = ""): Promise<WorkOrder> {
    const move = MOVES[action];
    const message = `${action} by a person${note.trim() ? `: ${note.trim()}` : ""}`;
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
      return moved;
    });
  }

  /** Closes an open defect, keeping when and why. */
  async closeDefect(defectId: number, note = ""): Promise<Defect> {
    const closed = await this.db
      .updateTable("defects")
      .set({ status: "closed", closed_at: new Date(), close_note: note.trim() || null })
      .where("id", "=", defectId)
      .where("status", "=", "open")
      .returningAll()
      .executeTakeFirst();
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
