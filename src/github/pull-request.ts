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
  return github.openPullRequest({
    head: proposal.branch,
    base: proposal.base,
    title: proposal.title,
    body: proposal.body,
  });
}
