import { NightshiftError } from "../errors/index.ts";
import type { WorkOrder } from "./schema.ts";
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

/** Adds orders all-or-nothing; dependencies must name keys in this batch or already queued. */
export async function addOrders(db: Db, orders: NewWorkOrder[]): Promise<WorkOrder[]> {
  return db.transaction().execute(async (tx) => {
    await checkKeys(tx, orders);
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

async function checkKeys(tx: Db, orders: NewWorkOrder[]) {
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

export async function cancelOrder(db: Db, id: number, reason: string): Promise<WorkOrder> {
  return db.transaction().execute(async (tx) => {
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

function orderError(message: string): NightshiftError {
  return new NightshiftError("order_invalid", message, {
    hint: "fix the order (or backlog file) and add it again; nothing was added",
  });
}
