import type { GitHub } from "../github/index.ts";
import { proposeChange } from "../github/index.ts";
import { git } from "../workspace/git.ts";
import type { Workspace } from "../workspace/index.ts";
import type { LandingHooks, LandingResult } from "./serial-queue.ts";
import type { MergeQueue } from "./speculative-queue.ts";

/**
 * The output mode for a repository where people merge: a gate-passed candidate is pushed to the
 * remote as `nightshift/wo-<order>` and proposed as a pull request into the landing branch, and
 * its order ends "proposed" with the request's URL. Main is never moved by the line. The
 * candidate was checked on the main it was built on; the pull request's own checks (and the
 * person merging) judge it against the main it meets.
 */
export class PullRequestOutput implements MergeQueue {
  constructor(
    private readonly github: GitHub,
    private readonly settings: { remote: string; base: string },
  ) {}

  async land(workspace: Workspace, hooks: LandingHooks): Promise<LandingResult> {
    const commit = (await git(["rev-parse", "HEAD"], { cwd: workspace.path })).stdout.trim();
    const order = hooks.order;
    const id = order?.id;
    const title = order ? `WO-${order.id}: ${order.title}` : `nightshift: ${workspace.branch}`;
    const body = [
      order?.spec ?? "",
      order?.acceptance ? `\n**Acceptance**\n\n${order.acceptance}` : "",
      "\nOpened by nightshift: the candidate passed every gate of the factory's ratchet on the main it was built on.",
    ]
      .join("\n")
      .trim();
    const pr = await proposeChange(this.github, {
      repoPath: workspace.path,
      remote: this.settings.remote,
      commit,
      branch: id !== undefined ? `nightshift/wo-${id}` : workspace.branch,
      base: this.settings.base,
      title: title.length > 250 ? `${title.slice(0, 247)}...` : title,
      body,
    });
    return { status: "proposed", url: pr.url, commit };
  }
}
