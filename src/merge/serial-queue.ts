import { type Gate, type GateOutcome, runGates } from "../gates/index.ts";
import type { Workspace, Workspaces } from "../workspace/index.ts";

export type LandingResult =
  | { status: "landed"; previousMain: string; commit: string }
  /** opened as a pull request (merge/pull-request-output.ts); main did not move. */
  | { status: "proposed"; url: string; commit: string }
  | { status: "conflict"; conflicts: string[] }
  | { status: "rejected"; failed: GateOutcome };

export interface LandingHooks {
  /** Every gate outcome on the rebased candidate, as it happens. */
  onGate(outcome: GateOutcome, commit: string): Promise<void>;
  /**
   * Called after the gates passed and before main moves: the caller records the commit it is about
   * to land, so that a crash between moving main and recording the landing can be recovered.
   */
  beforeFastForward(commit: string, previousMain: string): Promise<void>;
  /**
   * Called before each merge-queue test the candidate takes part in, with the number of tests so
   * far including this one, so that the gate-round cap holds over a restart.
   */
  onRound?(rounds: number): Promise<void>;
  /** Tests the candidate already took part in before a restart (default 0). */
  roundsSoFar?: number;
  /** the order the candidate is for, for an output that describes it (a pull request). */
  order?: { id: number; title: string; spec: string; acceptance: string };
}

/**
 * Lands candidates one at a time: rebase onto main, run the gates again on exactly the rebased
 * commit (unless rebasing changed nothing, in which case the candidate's own gate results already
 * hold for it), then move main forward by compare-and-swap. Main only ever points at a commit
 * whose gates passed exactly as merged.
 */
export class SerialMergeQueue {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly workspaces: Workspaces,
    private readonly gates: Gate[],
  ) {}

  land(workspace: Workspace, hooks: LandingHooks, signal?: AbortSignal): Promise<LandingResult> {
    const turn = this.tail.then(() => this.landNow(workspace, hooks, signal));
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  private async landNow(
    workspace: Workspace,
    hooks: LandingHooks,
    signal?: AbortSignal,
  ): Promise<LandingResult> {
    // Someone outside the line may move main meanwhile; then rebase and test again.
    for (;;) {
      const previousMain = await this.workspaces.mainTip();
      const rebase = await this.workspaces.rebaseOntoMain(workspace);
      if (!rebase.ok) return { status: "conflict", conflicts: rebase.conflicts };
      if (rebase.rebased) {
        const ratchet = await runGates(this.gates, {
          workspacePath: workspace.path,
          commit: rebase.commit,
          ...(signal ? { signal } : {}),
        });
        for (const outcome of ratchet.outcomes) await hooks.onGate(outcome, rebase.commit);
        const failed = ratchet.outcomes.find((o) => !o.passed);
        if (failed) return { status: "rejected", failed };
      }
      await hooks.beforeFastForward(rebase.commit, previousMain);
      if (await this.workspaces.fastForwardMain(previousMain, rebase.commit)) {
        return { status: "landed", previousMain, commit: rebase.commit };
      }
    }
  }
}
