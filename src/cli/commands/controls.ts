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

/** `nightshift stop RUN`: the console's "stop a run"; the run's order then waits for a person. */
export async function stopRunCommand(
  root: string,
  ref: string,
  options: { note?: string },
): Promise<string> {
  const id = numberOf(ref, "(?:run|R)");
  if (id === undefined) {
    throw new NightshiftError("run_not_found", `${JSON.stringify(ref)} is not a run number`, {
      hint: "give the run as 12 or run-12 (see `nightshift status --json` or the console); nothing was changed",
    });
  }
  const factory = await openFactory(root, "nightshift stop");
  try {
    const { order, run } = await factory.ledger.controls.stopRun(
      id,
      options.note ?? "",
      cliActor(),
    );
    return `run ${run.id} stopped; WO-${order.id} waits for a person: \`nightshift approve WO-${order.id}\` queues it again, \`nightshift reject WO-${order.id}\` cancels it`;
  } finally {
    await factory.close();
  }
}

/** The range the console's API takes too (schema.ts AmendOrderBody). */
const PRIORITY = { min: -1000, max: 1000 };
const MAX_ORDER_TOKENS = 100_000_000;

/** `nightshift priority ORDER N`: higher runs first. */
export async function priorityCommand(
  root: string,
  ref: string,
  raw: string,
  options: { note?: string },
): Promise<string> {
  const priority = /^[+-]?\d{1,9}$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(priority) || priority < PRIORITY.min || priority > PRIORITY.max) {
    throw new NightshiftError(
      "invalid_priority",
      `priority ${JSON.stringify(raw)} is not a whole number from ${PRIORITY.min} to ${PRIORITY.max}`,
      { hint: "e.g. `nightshift priority WO-3 10` (higher runs first); nothing was changed" },
    );
  }
  const factory = await openFactory(root, "nightshift priority");
  try {
    const order = await findOrder(factory.ledger, ref);
    const moved = await factory.ledger.controls.amend(
      order.id,
      { priority },
      options.note ?? "",
      cliActor(),
    );
    return `WO-${moved.id} priority ${order.priority} -> ${moved.priority} (higher runs first): ${moved.title}`;
  } finally {
    await factory.close();
  }
}

/** `nightshift budget order ORDER TOKENS|default`: the tokens one run of the order may spend. */
export async function orderBudgetCommand(
  root: string,
  ref: string,
  raw: string,
  options: { note?: string },
): Promise<string> {
  const text = raw.trim().replace(/_/g, "");
  const tokens = text === "default" ? null : /^\d{1,12}$/.test(text) ? Number(text) : Number.NaN;
  if (tokens !== null && (!Number.isInteger(tokens) || tokens < 1 || tokens > MAX_ORDER_TOKENS)) {
    throw new NightshiftError(
      "invalid_order_budget",
      `${JSON.stringify(raw)} is not a token budget: give a whole number of tokens from 1 to ${MAX_ORDER_TOKENS}, or "default" for the factory's ([budget] max_tokens_per_run)`,
      { hint: "e.g. `nightshift budget order WO-3 200000`; nothing was changed" },
    );
  }
  const factory = await openFactory(root, "nightshift budget order");
  try {
    const order = await findOrder(factory.ledger, ref);
    const moved = await factory.ledger.controls.amend(
      order.id,
      { budgetTokens: tokens },
      options.note ?? "",
      cliActor(),
    );
    const shown = (n: number | null) => (n === null ? "the factory's" : `${n} tokens`);
    return `WO-${moved.id} token budget per run ${shown(order.budget_tokens)} -> ${shown(moved.budget_tokens)}: ${moved.title}`;
  } finally {
    await factory.close();
  }
}
