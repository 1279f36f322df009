import type { GateOutcome } from "../gates/index.ts";
import type { RunEnding } from "../ledger/index.ts";
import { BaselineKeeper } from "./baseline.ts";
import type { LineContext } from "./context.ts";

/**
 * Keeps the line from charging orders for a red main: main's tip must pass the tree gates before
 * runs start, and a candidate failing a tree gate that its base fails too is not the order's fault.
 * Either way the line halts until a person fixes main or the environment its gates run in.
 */
export class MainGuard {
  private readonly baseline: BaselineKeeper;

  constructor(private readonly ctx: LineContext) {
    const { parts } = ctx;
    this.baseline = new BaselineKeeper({
      ledger: parts.ledger,
      workspaces: parts.workspaces,
      gates: parts.gates,
      logger: parts.logger,
      ...(parts.baselineDir ? { scratchDir: parts.baselineDir } : {}),
    });
  }

  /** Main moved: the commit that landed passed every gate as merged. */
  landed(commit: string): Promise<void> {
    return this.baseline.landed(commit);
  }

  /** Whether main's tip passes the tree gates; if not, the line halts with the cause. */
  async mainPasses(signal: AbortSignal): Promise<boolean> {
    const verdict = await this.baseline.check(undefined, signal);
    if (verdict.passed) return true;
    this.halt(verdict.cause ?? "main fails the gates");
    return false;
  }

  /**
   * A candidate failed a tree gate: if the main it was built on fails that way too, the order
   * waits without losing an attempt (as for a blocking model failure) and the line halts.
   */
  async blameMain(
    failed: GateOutcome,
    base: string,
    signal: AbortSignal,
  ): Promise<RunEnding | undefined> {
    const gate = this.ctx.parts.gates.find((g) => g.name === failed.gate);
    if (!gate || (gate.scope ?? "tree") !== "tree") return undefined;
    const verdict = await this.baseline.check(base, signal, { verify: true });
    if (verdict.passed) return undefined;
    const cause = verdict.cause ?? "main fails the gates";
    this.halt(cause);
    return { outcome: "requeue", reason: `not this order's fault: ${cause}` };
  }

  private halt(cause: string): void {
    const halted = this.ctx.halt.pull(
      `${cause}. No agent run starts and no order is charged until main passes: fix main or the environment its gates run in, then start the line again`,
    );
    if (halted)
      this.ctx.parts.logger.error({ cause }, "the line pauses: main itself fails the gates");
  }
}
