import type { Kysely, Transaction } from "kysely";
import { NightshiftError } from "../errors/index.ts";
import type { Database, WorkOrder } from "./schema.ts";

export type Db = Kysely<Database> | Transaction<Database>;

/** Every change of an order's or a run's state is a row here, written in the change's transaction. */
export function recordTransition(
  tx: Db,
  row: {
    order_id: number;
    run_id?: number;
    entity: "order" | "run";
    from_status?: string;
    to_status: string;
    message?: string;
  },
) {
  return tx
    .insertInto("transitions")
    .values({
      order_id: row.order_id,
      run_id: row.run_id ?? null,
      entity: row.entity,
      from_status: row.from_status ?? null,
      to_status: row.to_status,
      message: row.message ?? "",
    })
    .execute();
}

/**
 * The order, locked for the rest of the transaction so that a person's control and the line
 * cannot both move it; an unknown id is the person's mistake, said with the way to find the right one.
 */
export async function lockOrder(tx: Db, orderId: number): Promise<WorkOrder> {
  const order = await tx
    .selectFrom("work_orders")
    .selectAll()
    .where("id", "=", orderId)
    .forUpdate()
    .executeTakeFirst();
  if (!order) {
    throw new NightshiftError("order_not_found", `there is no order WO-${orderId}`, {
      hint: "see `nightshift status` for the orders and their numbers",
    });
  }
  return order;
}
