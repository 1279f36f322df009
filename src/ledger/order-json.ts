import type { WorkOrder } from "./schema.ts";

/**
 * A work_orders row as row_to_json gives it: what a statement returns for the order beside
 * another table's row (one statement has one result set). JSON carries every column as the row
 * would (integers, text, the jsonb arrays) except the two timestamps, which come as ISO strings.
 */
export type OrderJson = Omit<WorkOrder, "created_at" | "updated_at"> & {
  created_at: string;
  updated_at: string;
};

export function orderFromJson(json: OrderJson): WorkOrder {
  return { ...json, created_at: new Date(json.created_at), updated_at: new Date(json.updated_at) };
}
