import type { Kysely, Transaction } from "kysely";
import type { Database } from "./schema.ts";

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
