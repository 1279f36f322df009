import type { Logger } from "pino";
import type { Ledger, WorkOrder } from "../ledger/index.ts";
import type { GitHub } from "./client.ts";
import { GitHubError } from "./errors.ts";
import { takeInIssues } from "./intake.ts";

/**
 * Takes in labelled issues while the line runs: at most once per interval, and not before a
 * rate limit's reset. A failure is logged and never stops the line (its queue may be full).
 */
export class IssuePoller {
  private notBefore = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly parts: { github: GitHub; ledger: Ledger; logger: Logger },
    private readonly settings: { labels: string[]; approval: boolean; intervalMs: number },
    private readonly now: () => number = Date.now,
  ) {}

  async poll(): Promise<WorkOrder[]> {
    if (this.now() < this.notBefore) return [];
    this.notBefore = this.now() + this.settings.intervalMs;
    try {
      const added = await takeInIssues(this.parts.github, this.parts.ledger, this.settings);
      if (added.length > 0) {
        this.parts.logger.info(
          { orders: added.map((o) => ({ id: o.id, source: o.source })) },
          "took in GitHub issues",
        );
      }
      return added;
    } catch (error) {
      if (error instanceof GitHubError && error.code === "github_rate_limited") {
        const reset = Date.parse(String(error.details.resetAt));
        if (Number.isFinite(reset)) this.notBefore = Math.max(this.notBefore, reset);
      }
      this.parts.logger.warn({ err: error }, "could not take in GitHub issues");
      return [];
    }
  }
}
