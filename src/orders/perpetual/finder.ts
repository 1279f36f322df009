import type { Logger } from "pino";
import type { PerpetualSource } from "../../config/index.ts";
import { describeError } from "../../errors/index.ts";
import type { Ledger, WorkOrder } from "../../ledger/index.ts";
import {
  type CoverageSettings,
  coverageSource,
  type LintSettings,
  lintSource,
} from "./check-sources.ts";
import type { CheckoutParts } from "./checkout.ts";
import { PerpetualSourceError } from "./errors.ts";
import { type FoundWork, foundOrder } from "./found-work.ts";
import {
  defectsSource,
  flakyTestsSource,
  goalsSource,
  SOURCE_DEFECT_KIND,
  type SourceContext,
  todoSource,
} from "./sources.ts";

const SOURCES: Record<PerpetualSource, (ctx: SourceContext) => Promise<FoundWork[]>> = {
  goals: goalsSource,
  tests: flakyTestsSource,
  defects: defectsSource,
  todo: todoSource,
  lint: (ctx) => lintSource(needCheckouts(ctx, "lint"), needSettings(ctx.lint, "lint")),
  coverage: (ctx) =>
    coverageSource(
      { ...needCheckouts(ctx, "coverage"), repoPath: ctx.repoPath, branch: ctx.branch },
      needSettings(ctx.coverage, "coverage"),
    ),
};

/** Orders the finder added have a source starting with one of these. */
const FOUND_SOURCE = /^(goals|todo|defect|tests|lint|coverage):/;
const OPEN_STATUSES = new Set(["waiting", "queued", "running"]);

export interface WorkFinderSettings {
  sources: readonly PerpetualSource[];
  /** Found orders wait for a person's approval. */
  approval: boolean;
  maxOrdersPerRound: number;
  intervalMs: number;
  goalsFile: string;
  todoMarkers: string[];
  /** The lint source's checks; required when sources lists "lint". */
  lint?: LintSettings;
  /** The coverage source's command and threshold; required when sources lists "coverage". */
  coverage?: CoverageSettings;
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
  private inFlight: Promise<unknown> | undefined;
  private readonly stopping = new AbortController();

  constructor(
    private readonly parts: {
      ledger: Ledger;
      repoPath: string;
      branch: string;
      logger: Logger;
      /** Where the lint and coverage sources run their commands. */
      checkouts?: CheckoutParts;
    },
    private readonly settings: WorkFinderSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Starts a round in the background unless one is under way: a lint or coverage command may take
   * minutes, and the line's loop (claims, the inbox, shutting down) must not wait for it.
   */
  poke(): void {
    if (this.inFlight || this.stopping.signal.aborted) return;
    this.inFlight = this.findWork()
      .catch((error: unknown) => this.parts.logger.warn({ err: error }, "finding work failed"))
      .finally(() => {
        this.inFlight = undefined;
      });
  }

  /** Stops a command under way and waits for the round to end. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.inFlight;
  }

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
    const openSources = new Set(
      orders.filter((o) => OPEN_STATUSES.has(o.status)).map((o) => o.source),
    );
    const ctx: SourceContext = {
      ledger,
      repoPath: this.parts.repoPath,
      branch: this.parts.branch,
      goalsFile: this.settings.goalsFile,
      todoMarkers: this.settings.todoMarkers,
      ...(this.parts.checkouts
        ? { checkouts: { ...this.parts.checkouts, signal: this.stopping.signal } }
        : {}),
      ...(this.settings.lint ? { lint: this.settings.lint } : {}),
      ...(this.settings.coverage ? { coverage: this.settings.coverage } : {}),
    };
    const picked: FoundWork[] = [];
    for (const name of this.settings.sources) {
      if (picked.length >= room) break;
      let found: FoundWork[];
      try {
        found = await SOURCES[name](ctx);
      } catch (error) {
        if (this.stopping.signal.aborted) return [];
        logger.warn({ err: error, source: name }, "a perpetual source failed; trying the others");
        if (error instanceof PerpetualSourceError) await this.recordFailure(name, error);
        continue;
      }
      for (const work of found) {
        if (picked.length >= room) break;
        if (known.has(work.key)) continue;
        if (work.onePerSource && openSources.has(work.source)) continue;
        known.add(work.key);
        openSources.add(work.source);
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

  /**
   * A source that cannot look for work (its command is missing, times out, its report cannot be
   * read) becomes a defect a person sees, once while an open one says the same: the line keeps
   * going on its other sources, and the next rounds do not pile up copies.
   */
  private async recordFailure(source: string, error: PerpetualSourceError): Promise<void> {
    const { ledger, logger } = this.parts;
    // Said the same way for the same source and problem, so that a changing output (timings)
    // does not make it a new defect every round.
    const head = `The perpetual source "${source}" could not look for work (${error.code})`;
    const summary = `${head}: ${error.message}`.slice(0, 2_000);
    try {
      const open = await ledger.listDefects({ status: "open" });
      if (open.some((d) => d.kind === SOURCE_DEFECT_KIND && d.summary.startsWith(head))) return;
      await ledger.raiseDefect({
        kind: SOURCE_DEFECT_KIND,
        summary,
        evidence: { source, code: error.code, hint: error.hint, details: error.details },
      });
    } catch (recordError) {
      logger.warn(
        { err: recordError, problem: describeError(error) },
        "could not record a source's failure",
      );
    }
  }
}

/** An order the finder added: its source names a perpetual source. */
function isFound(order: WorkOrder): boolean {
  return FOUND_SOURCE.test(order.source);
}

function needCheckouts(ctx: SourceContext, source: string): CheckoutParts {
  if (ctx.checkouts) return ctx.checkouts;
  throw new PerpetualSourceError(
    "source_command_could_not_start",
    `the "${source}" source runs a command in a checkout of the landing branch, and this line has none to give it`,
    "run it from `nightshift run --forever`, which gives it the line's workspaces",
  );
}

function needSettings<T>(settings: T | undefined, source: string): T {
  if (settings) return settings;
  throw new PerpetualSourceError(
    "source_command_could_not_start",
    `the "${source}" source has no settings`,
    `configure [perpetual.${source}] in nightshift.toml`,
  );
}
