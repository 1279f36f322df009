import { isNightshiftError } from "../../errors/index.ts";
import type { NewWorkOrder } from "../../ledger/index.ts";
// Not the orders barrel: it would load the planner's model SDKs into every `add`.
import { Inbox } from "../../orders/inbox.ts";
import { parseOrder, readBacklog } from "../../orders/intake.ts";
import { inboxDir, locateFactory, openFactory } from "../factory.ts";

export interface AddOptions {
  file?: string;
  spec?: string;
  acceptance?: string;
  priority?: string;
  scope?: string;
  key?: string;
  dependsOn?: string;
  maxAttempts?: string;
  driver?: string;
  model?: string;
  holdout?: string;
  needsApproval?: boolean;
}

export async function addCommand(root: string, title: string | undefined, options: AddOptions) {
  const orders = options.file ? await readBacklog(options.file) : [orderFromFlags(title, options)];
  const location = await locateFactory(root);
  let factory: Awaited<ReturnType<typeof openFactory>>;
  try {
    factory = await openFactory(root, "nightshift add");
  } catch (error) {
    // A running line holds the embedded ledger: hand the orders to it through its inbox.
    if (!isNightshiftError(error) || error.code !== "ledger_busy") throw error;
    await new Inbox(inboxDir(location)).put(orders);
    return `the ledger is held by pid ${error.details.pid}; ${orders.length} order(s) put in its inbox: they are queued on its next poll (a bad dependency key is reported in its log)`;
  }
  try {
    // With the acceptance writer on, an order with acceptance criteria and no scenario waits from
    // the start (no worker can claim it before its drafts exist), then gets its drafts.
    const writer = factory.config.gates.holdout.acceptance_writer;
    const drafts = orders.map(
      (o) => writer && !!o.acceptance?.trim() && (o.holdout?.length ?? 0) === 0,
    );
    const added = await factory.ledger.addOrders(
      orders.map((o, i) => (drafts[i] ? { ...o, needsApproval: true } : o)),
    );
    const lines = added.map((o, i) => {
      const hidden = orders[i]?.holdout?.length ?? 0;
      const state = o.status === "waiting" ? "waiting for approval" : "queued";
      return `${state} WO-${o.id}: ${o.title}${hidden > 0 ? ` (${hidden} hidden scenario(s))` : ""}`;
    });
    const toDraft = added.filter((_, i) => drafts[i]).map((o) => o.id);
    if (toDraft.length > 0) {
      const { draftFor } = await import("./draft-acceptance.ts");
      try {
        lines.push(...(await draftFor(factory, toDraft)));
      } catch (error) {
        // The orders are in and wait: a person approves them as they are or drafts again.
        lines.push(
          `the acceptance writer failed: ${(error as Error).message}; the order(s) wait: \`nightshift draft-acceptance WO-<id>\` to try again, or \`nightshift approve WO-<id>\` to run without hidden scenarios`,
        );
      }
    }
    return lines.join("\n");
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
      // Given but empty is passed on, so the schema says what is wrong with it.
      ...(options.driver !== undefined ? { driver: options.driver } : {}),
      ...(options.model !== undefined ? { model: options.model } : {}),
      ...(options.holdout !== undefined ? { holdout: listFlag(options.holdout) } : {}),
      ...(options.needsApproval ? { needs_approval: true } : {}),
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
