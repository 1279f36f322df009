import { git } from "../workspace/git.ts";
import type { GitHub, PullRequest } from "./client.ts";
import { GitHubError } from "./errors.ts";

export interface Proposal {
  repoPath: string;
  /** The git remote the branch is pushed to (e.g. "origin"). */
  remote: string;
  /** The commit to propose, and the branch name it gets on the remote. */
  commit: string;
  branch: string;
  /** The branch the pull request asks to merge into. */
  base: string;
  title: string;
  body: string;
}

/**
 * Pushes a gate-passed candidate to the remote as its own branch and opens a pull request for
 * it: the output mode for a repository where people merge, not the line. A push that fails
 * opens nothing.
 *
 * An open pull request from the branch is adopted, not duplicated: after a crash between opening
 * it and recording it in the ledger, the order's next attempt pushes its candidate to the same
 * branch (which updates that pull request) and records the one already open.
 */
export async function proposeChange(github: GitHub, proposal: Proposal): Promise<PullRequest> {
  const pushed = await git(
    ["push", "--force", proposal.remote, `${proposal.commit}:refs/heads/${proposal.branch}`],
    { cwd: proposal.repoPath, okCodes: [1, 128] },
  );
  if (pushed.exitCode !== 0) {
    throw new GitHubError(
      "github_failed",
      `could not push ${proposal.commit.slice(0, 10)} to ${proposal.remote} as ${proposal.branch}: ${pushed.stderr.trim().split("\n").at(-1) ?? ""}`,
      {
        hint: `check that the remote "${proposal.remote}" exists and accepts pushes (git push ${proposal.remote})`,
      },
    );
  }
  const wanted = { head: proposal.branch, base: proposal.base };
  const open = await github.findOpenPullRequest(wanted);
  if (open) return open;
  try {
    return await github.openPullRequest({ ...wanted, title: proposal.title, body: proposal.body });
  } catch (error) {
    // Opened meanwhile (another worker, or a person): GitHub refuses a second one with 422.
    if (error instanceof GitHubError && error.code === "github_invalid") {
      const opened = await github.findOpenPullRequest(wanted);
      if (opened) return opened;
    }
    throw error;
  }
}
