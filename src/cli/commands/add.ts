import type { NewWorkOrder } from "../../ledger/index.ts";
import { parseOrder, readBacklog } from "../../orders/index.ts";
import { openFactory } from "../factory.ts";

export interface AddOptions {
  file?: string;
  spec?: string;
  acceptance?: string;
  priority?: string;
  scope?: string;
  key?: string;
  dependsOn?: string;
  maxAttempts?: string;
}

export async function addCommand(root: string, title: string | undefined, options: AddOptions) {
  const orders = options.file ? await readBacklog(options.file) : [orderFromFlags(title, options)];
  const factory = await openFactory(root, "nightshift add");
  try {
    const added = await factory.ledger.addOrders(orders);
    return added.map((o) => `queued WO-${o.id}: ${o.title}`).join("\n");
  } finally {
    await factory.close();
  }
}

function orderFromFlags(title: string | undefined, options: AddOptions): NewWorkOrder {
  return parseOrder(
    {
      title: title ?? "",
      spec: options.spec ?? "",
      acceptance: options.acceptance ?? "",
      ...(options.priority !== undefined ? { priority: numberFlag(options.priority) } : {}),
      ...(options.maxAttempts !== undefined
        ? { max_attempts: numberFlag(options.maxAttempts) }
        : {}),
      scope: listFlag(options.scope),
      depends_on: listFlag(options.dependsOn),
      ...(options.key ? { key: options.key } : {}),
    },
    "the order given on the command line",
  );
}

/** Left as text when not a number, so the schema reports it with the field's name. */
function numberFlag(value: string): number | string {
  return value.trim() !== "" && Number.isFinite(Number(value)) ? Number(value) : value;
}

function listFlag(value: string | undefined): string[] {
  return value
    ? value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}
