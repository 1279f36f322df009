import type { Logger } from "pino";
import type { PerpetualSource } from "../../config/index.ts";
import type { Ledger, WorkOrder } from "../../ledger/index.ts";
import { type FoundWork, foundOrder } from "./found-work.ts";
import {
  defectsSource,
  flakyTestsSource,
  goalsSource,
  type SourceContext,
  todoSource,
} from "./sources.ts";

const SOURCES: Record<PerpetualSource, (ctx: SourceContext) => Promise<FoundWork[]>> = {
  goals: goalsSource,
  tests: flakyTestsSource,
  defects: defectsSource,
  todo: todoSource,
};

export interface WorkFinderSettings {
  sources: readonly PerpetualSource[];
  /** Found orders wait for a person's approval. */
  approval: boolean;
  maxOrdersPerRound: number;
  intervalMs: number;
  goalsFile: string;
  todoMarkers: string[];
}

/**
 * The perpetual loop's own intake: when the queue runs dry, it looks for work in the configured
 * sources, in their order, and adds what it has not added before (see FoundWork's keys), a few
 * orders per round. It does nothing while orders are queued or running, while earlier findings
 * still wait for approval (a supervisor away for the weekend comes back to a short list, not a
 * flood), or within `intervalMs` of its last round.
 */
export class WorkFinder {
  private lastRound = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly parts: { ledger: Ledger; repoPath: string; branch: string; logger: Logger },
    private readonly settings: WorkFinderSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** One round, if it is due; returns the orders it added. */
  async findWork(): Promise<WorkOrder[]> {
    const { ledger, logger } = this.parts;
    if (this.settings.sources.length === 0) return [];
    if (this.now() - this.lastRound < this.settings.intervalMs) return [];
    const orders = await ledger.listOrders();
    if (orders.some((o) => o.status === "queued" || o.status === "running")) return [];
    const waitingFound = orders.filter((o) => o.status === "waiting" && isFound(o)).length;
    const room = this.settings.maxOrdersPerRound - waitingFound;
    if (room <= 0) return [];
    this.lastRound = this.now();
    const known = new Set(orders.flatMap((o) => (o.key ? [o.key] : [])));
    const ctx: SourceContext = {
      ledger,
      repoPath: this.parts.repoPath,
      branch: this.parts.branch,
      goalsFile: this.settings.goalsFile,
      todoMarkers: this.settings.todoMarkers,
    };
    const picked: FoundWork[] = [];
    for (const name of this.settings.sources) {
      if (picked.length >= room) break;
      let found: FoundWork[];
      try {
        found = await SOURCES[name](ctx);
      } catch (error) {
        logger.warn({ err: error, source: name }, "a perpetual source failed; trying the others");
        continue;
      }
      for (const work of found) {
        if (picked.length >= room) break;
        if (known.has(work.key)) continue;
        known.add(work.key);
        picked.push(work);
      }
    }
    if (picked.length === 0) {
      logger.info({ sources: this.settings.sources }, "the queue ran dry: found no new work");
      return [];
    }
    const added = await ledger.addOrders(picked.map((w) => foundOrder(w, this.settings.approval)));
    logger.info(
      { orders: added.map((o) => ({ id: o.id, source: o.source })) },
      "the queue ran dry: found work",
    );
    return added;
  }
}

/** An order the finder added: its source names a perpetual source. */
function isFound(order: WorkOrder): boolean {
  return /^(goals|todo|defect|tests):/.test(order.source);
}
