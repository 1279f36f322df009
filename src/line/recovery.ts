import { describeError } from "../errors/index.ts";
import type { Run } from "../ledger/index.ts";
import type { Workspace } from "../workspace/index.ts";
import type { LineContext } from "./context.ts";
import type { Foreman } from "./foreman.ts";
import type { RunWork } from "./run-work.ts";

/**
 * A candidate taken over from a dead worker this many times is not adopted again: it may be what
 * takes the factory down. Its order gets a fresh run instead.
 */
const MAX_ADOPTIONS = 3;

/**
 * Takes back runs whose worker is gone: at start-up and shutdown this worker's own (or, on the
 * embedded ledger, every running run), and while the line works other workers' runs whose lease
 * expired. A run that reached main is recorded as landed, one whose gate-passed candidate waits in
 * the merge queue is adopted (its candidate goes back in the queue), any other is requeued.
 */
export class Recovery {
  constructor(
    private readonly ctx: LineContext,
    private readonly foreman: Foreman,
    private readonly work: RunWork,
  ) {}

  /**
   * With `lineSignal` (start-up) adoptable runs are adopted and seen through; with `expiredOnly`
   * (the timekeeper) only other workers' runs whose lease ran out are taken back; with `park`
   * (shutdown) this worker's queued candidates are left for the next start.
   */
  async recover(
    lineSignal?: AbortSignal,
    options: { park?: boolean; expiredOnly?: boolean } = {},
  ): Promise<void> {
    const { ledger, workspaces, logger, workerId, soleWorker } = this.ctx.parts;
    const onMain = async (commit: string) =>
      workspaces.isAncestor(commit, await workspaces.mainTip()).catch(() => false);
    const recovered = await ledger.recovery.recoverRuns({
      ...(options.expiredOnly
        ? { all: false, exceptWorker: workerId }
        : { all: soleWorker, workerId }),
      hasLanded: onMain,
      ...(options.park ? { park: true } : {}),
      ...(lineSignal
        ? {
            adopt: {
              workerId,
              leaseMs: this.ctx.settings.leaseMs,
              maxAdoptions: MAX_ADOPTIONS,
              canResume: async (run: Run) =>
                run.candidate_commit !== null &&
                (await workspaces
                  .isAncestor(run.candidate_commit, await workspaces.mainTip())
                  .then((landed) => !landed)
                  .catch(() => false)),
            },
          }
        : {}),
    });
    const adopted: Run[] = [];
    for (const { run, outcome } of recovered) {
      logger.warn({ runId: run.id, orderId: run.order_id, outcome }, "recovered a run");
      if (outcome === "adopted") {
        adopted.push(run);
        continue;
      }
      const order = await ledger.getOrder(run.order_id);
      if (order) {
        await this.ctx.progress.report(order, {
          runId: run.id,
          state: outcome === "landed" ? "landed" : outcome === "parked" ? "merging" : "abandoned",
          message:
            outcome === "parked"
              ? "left in the merge queue for the next start"
              : (run.outcome_reason ?? outcome),
        });
      }
    }
    // This line's own runs count as live until they have settled: one that just ended may still
    // be releasing (or keeping) its worktree when the timekeeper prunes.
    const live = new Set([
      ...(await ledger.listRuns()).filter((r) => r.status === "running").map((r) => String(r.id)),
      ...[...this.ctx.active.keys()].map(String),
    ]);
    await workspaces.prune(live);
    // In queue order: each candidate is handed to the queue before the next one's worktree is made.
    for (const run of adopted) if (lineSignal) await this.readmit(run, lineSignal);
  }

  /** Puts an adopted run's candidate back in the merge queue and sees it through. */
  private async readmit(run: Run, lineSignal: AbortSignal): Promise<void> {
    const { ledger, workspaces, logger } = this.ctx.parts;
    const log = logger.child({ orderId: run.order_id, runId: run.id, attempt: run.attempt });
    const order = await ledger.getOrder(run.order_id);
    let workspace: Workspace | undefined;
    let failure: unknown;
    try {
      if (order && run.candidate_commit) {
        workspace = await workspaces.resume(String(run.id), run.candidate_commit);
      }
    } catch (error) {
      failure = error;
    }
    if (!order || !workspace) {
      const why = `could not put candidate ${run.candidate_commit?.slice(0, 10)} back in the merge queue after a restart${failure ? ` (${describeError(failure)})` : ""}`;
      log.warn({ err: failure }, why);
      const abandoned = await ledger.recovery.abandon(run.id, why);
      if (order && abandoned) {
        await this.ctx.progress.report(order, { runId: run.id, state: "abandoned", message: why });
      }
      return;
    }
    log.info({ candidate: run.candidate_commit }, "candidate back in the merge queue");
    this.foreman.start(order, run, lineSignal, this.work.backInQueue(order, run, workspace));
  }
}
