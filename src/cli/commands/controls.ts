import os from "node:os";
import { NightshiftError } from "../../errors/index.ts";
import type { Ledger, OrderAction, WorkOrder } from "../../ledger/index.ts";
import { openFactory } from "../factory.ts";

const DONE: Record<OrderAction, string> = {
  retry: "queued again with a fresh set of attempts (its last feedback kept)",
  requeue: "queued again; its run was abandoned and the attempt not counted",
  cancel: "cancelled",
  approve: "approved and queued (its drafted scenarios, if any, now judge it)",
  reject: "rejected and cancelled (its drafted scenarios discarded)",
};

/**
 * `nightshift retry|requeue|cancel|approve|reject ORDER`: a person's control over one order,
 * recorded in the ledger's transitions with the note given. ORDER is `WO-3`, `3` or the order's key.
 */
export async function orderControlCommand(
  root: string,
  action: OrderAction,
  ref: string,
  options: { note?: string },
): Promise<string> {
  const factory = await openFactory(root, `nightshift ${action}`);
  try {
    const order = await findOrder(factory.ledger, ref);
    const moved = await factory.ledger.controls.apply(
      action,
      order.id,
      options.note ?? "",
      cliActor(),
    );
    return `WO-${moved.id} ${DONE[action]}: ${moved.title}`;
  } finally {
    await factory.close();
  }
}

/** `nightshift defect close D-4 --note "..."`. */
export async function defectCloseCommand(
  root: string,
  ref: string,
  options: { note?: string },
): Promise<string> {
  const id = numberOf(ref, "D");
  if (id === undefined) {
    throw new NightshiftError("defect_not_found", `${JSON.stringify(ref)} is not a defect number`, {
      hint: "give the defect as D-4 or 4 (see `nightshift status`)",
    });
  }
  const factory = await openFactory(root, "nightshift defect close");
  try {
    const closed = await factory.ledger.controls.closeDefect(id, options.note ?? "", cliActor());
    return `D-${closed.id} closed: ${closed.summary}`;
  } finally {
    await factory.close();
  }
}

export async function findOrder(ledger: Ledger, ref: string): Promise<WorkOrder> {
  const id = numberOf(ref, "WO");
  const order =
    id !== undefined
      ? await ledger.getOrder(id)
      : (await ledger.listOrders()).find((o) => o.key === ref.trim());
  if (!order) {
    throw new NightshiftError("order_not_found", `there is no order ${JSON.stringify(ref)}`, {
      hint: "give the order as WO-3, 3 or its key (see `nightshift status`)",
    });
  }
  return order;
}

/** 3, "3" or "WO-3" (any case) as 3; anything else undefined. */
function numberOf(ref: string, prefix: string): number | undefined {
  const match = new RegExp(`^(?:${prefix}-?)?(\\d{1,9})$`, "i").exec(ref.trim());
  return match ? Number(match[1]) : undefined;
}

/** Who a control from the command line is recorded as: the user the CLI runs as. */
export function cliActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return "cli";
  }
}

/** `nightshift pause|resume`: the line's switch, in the ledger, for every worker sharing it. */
export async function lineSwitchCommand(
  root: string,
  action: "pause" | "resume",
  options: { note?: string },
): Promise<string> {
  const factory = await openFactory(root, `nightshift ${action}`);
  try {
    const before = await factory.ledger.line.state();
    if (action === "resume" && !before.paused) return "the line is not paused";
    const state = await factory.ledger.line[action](cliActor(), options.note ?? "");
    if (state.paused) {
      return "the line is paused: no worker starts a new run until `nightshift resume` (runs in flight carry on)";
    }
    return `the line resumes (it was paused by ${before.changed_by || "unknown"}: ${before.reason || "no reason recorded"}); workers claim runs again`;
  } finally {
    await factory.close();
  }
}
