import { NightshiftError } from "../errors/index.ts";
import {
  type DraftedScenario,
  draftAcceptance,
  type GateModelEndpoint,
  testConventions,
} from "../gates/index.ts";
import type { Ledger, WorkOrder } from "../ledger/index.ts";
import { ledgerScenarios } from "./holdout-scenarios.ts";

/** A factory-level model endpoint through the gateway (no run; metered with a null run id). */
export interface FactoryModelAccess {
  openFactory(orderId: number | null): GateModelEndpoint & { close(): Promise<void> };
}

export interface AcceptanceDraftParts {
  ledger: Ledger;
  models: FactoryModelAccess;
  /** The repository and the branch whose tests show the conventions. */
  repoPath: string;
  branch: string;
  /** [gates.holdout]: its folder (for scenarios given as files), command and target. */
  holdoutDir: string;
  command: string;
  target: string;
}

/**
 * The acceptance writer's step: for an order with acceptance criteria and no hidden scenario, a
 * separate model request (through the gateway, never a worker's) drafts scenarios from the order
 * and the repository's tests; they are stored as drafts and the order waits for a person. Its
 * output goes only to the ledger (and to the person who asked): no agent's prompt or feedback
 * carries a draft, and a draft runs in no gate until approved.
 */
export async function draftOrderAcceptance(
  parts: AcceptanceDraftParts,
  orderId: number,
  model: string,
  signal?: AbortSignal,
): Promise<{ order: WorkOrder; scenarios: DraftedScenario[] }> {
  const refuse = (message: string, hint: string) =>
    new NightshiftError("acceptance_draft_refused", `WO-${orderId}: ${message}`, {
      hint: `${hint}; nothing was drafted`,
    });
  if (!parts.command.trim()) {
    throw refuse(
      "there is no holdout command to write scenarios for",
      "set [gates.holdout] command in nightshift.toml (e.g. node --test --test-reporter=tap {file})",
    );
  }
  const order = await parts.ledger.getOrder(orderId);
  if (!order) {
    throw new NightshiftError("order_not_found", `there is no order WO-${orderId}`, {
      hint: "see `nightshift status` for the orders and their numbers",
    });
  }
  if (!order.acceptance.trim()) {
    throw refuse(
      "it has no acceptance criteria to draft scenarios from",
      "give the order acceptance criteria, or its scenarios yourself (`nightshift add --holdout`)",
    );
  }
  if (order.status !== "queued" && order.status !== "waiting") {
    throw refuse(`it is ${order.status}`, "only a queued or waiting order can get drafts");
  }
  const existing = (await ledgerScenarios(parts.ledger, parts.holdoutDir)(orderId)).filter(
    (s) => s.orderId === orderId,
  );
  if (existing.length > 0) {
    throw refuse(
      `it already has ${existing.length} hidden scenario(s)`,
      "drafts are only for an order with none",
    );
  }
  const conventions = await testConventions(parts.repoPath, parts.branch);
  const endpoint = parts.models.openFactory(orderId);
  let scenarios: DraftedScenario[];
  try {
    scenarios = await draftAcceptance({
      order,
      model,
      endpoint,
      command: parts.command,
      target: parts.target,
      conventions,
      ...(signal ? { signal } : {}),
    });
  } finally {
    await endpoint.close();
  }
  const stored = await parts.ledger.acceptance.storeDrafts(orderId, scenarios);
  return { order: stored.order, scenarios };
}
