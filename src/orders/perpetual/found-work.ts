import { createHash } from "node:crypto";
import type { NewWorkOrder } from "../../ledger/index.ts";

/**
 * An order a source found by itself. Its `key` is derived from what it is about (the file and text
 * of a TODO, a goal's text, a defect's number), so the same finding always gets the same key and
 * the ledger's unique keys make sure it becomes an order once, whatever became of that order.
 */
export interface FoundWork {
  key: string;
  title: string;
  spec: string;
  acceptance: string;
  scope: string[];
  /** Where it came from, kept on the order: "todo:src/a.ts:12", "goals:GOALS.md", "defect:D-4". */
  source: string;
  /**
   * While an order from the same `source` is still open (waiting, queued, running), no second one
   * is proposed: a file's lint errors changed since its order was found are still that order's work.
   */
  onePerSource?: boolean;
}

/** A stable key for a finding: its kind and a hash of what identifies it. */
export function findingKey(kind: string, identity: string): string {
  return `${kind}-${createHash("sha256").update(identity).digest("hex").slice(0, 12)}`;
}

export function foundOrder(work: FoundWork, needsApproval: boolean): NewWorkOrder {
  return {
    key: work.key,
    title: work.title.length > 200 ? `${work.title.slice(0, 197)}...` : work.title,
    spec: work.spec,
    acceptance: work.acceptance,
    scope: work.scope,
    source: work.source,
    ...(needsApproval ? { needsApproval: true } : {}),
  };
}
