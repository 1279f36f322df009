import { WorkspaceError } from "./errors.ts";
import { git } from "./git.ts";
import { OneAtATime } from "./one-at-a-time.ts";

/** Where this host keeps its view of the shared main; never a branch, so nobody checks it out. */
const TRACKING_REF = "refs/nightshift/main";
/** Candidates on the shared remote: refs outside refs/heads, so a plain clone does not fetch them. */
const CANDIDATE_PREFIX = "refs/nightshift/candidates/";

/**
 * Main on a shared git remote, for workers on several hosts (`[scale] remote`): every host reads
 * the tip from the remote and moves it only by compare-and-swap, a push with
 * `--force-with-lease=<branch>:<expected>`, which the remote refuses unless its branch still points
 * at the expected commit. Two leaders racing can therefore never both move main from the same tip:
 * the loser's push is rejected, and it rebases onto the winner and tests again.
 */
export class RemoteMain {
  /**
   * @param refUpdates runs this clone's fetches and pushes one at a time: two fetches at once
   *   (two candidates landing) fail with "cannot lock ref" when one moves the ref under the other.
   *   The caller shares it with its `git worktree add`s, which make a concurrent fetch fail too.
   */
  constructor(
    private readonly repoPath: string,
    readonly remote: string,
    private readonly branch: string,
    private readonly refUpdates: OneAtATime = new OneAtATime(),
  ) {}

  /** The remote's main tip now (fetched, so this host's objects include it). */
  tip(): Promise<string> {
    return this.refUpdates.run(() => this.fetchTip());
  }

  private async fetchTip(): Promise<string> {
    const fetched = await this.git(
      // --refmap= keeps the fetch off refs/remotes/*, which a concurrent push updates.
      [
        "fetch",
        "--quiet",
        "--no-tags",
        "--refmap=",
        this.remote,
        `+refs/heads/${this.branch}:${TRACKING_REF}`,
      ],
      [1, 128],
    );
    if (fetched.exitCode !== 0) {
      throw new WorkspaceError(
        "remote_unreachable",
        `cannot fetch branch ${JSON.stringify(this.branch)} from the remote ${JSON.stringify(this.remote)} ([scale] remote) in ${this.repoPath}: ${fetched.stderr.trim()}`,
        `check \`git remote -v\` in the repository and that the remote has a ${this.branch} branch with a first commit (push it once: git push ${this.remote} ${this.branch})`,
      );
    }
    return (await this.git(["rev-parse", "--verify", `${TRACKING_REF}^{commit}`])).stdout.trim();
  }

  /** Moves the remote's main from `expectedOld` to `next`; false when main was not at `expectedOld`. */
  async compareAndSwap(expectedOld: string, next: string): Promise<boolean> {
    const ref = `refs/heads/${this.branch}`;
    const pushed = await this.refUpdates.run(() =>
      this.git(
        [
          "push",
          "--quiet",
          "--no-verify",
          "--porcelain",
          `--force-with-lease=${ref}:${expectedOld}`,
          this.remote,
          `${next}:${ref}`,
        ],
        [1, 128],
      ),
    );
    if (pushed.exitCode === 0) {
      await this.refUpdates.run(() => this.git(["update-ref", TRACKING_REF, next]));
      return true;
    }
    // Rejected as stale (another leader moved main first) is the expected lost race.
    if ((await this.tip()) !== expectedOld) return false;
    throw new WorkspaceError(
      "remote_unreachable",
      `cannot push ${next.slice(0, 10)} to ${this.branch} on the remote ${JSON.stringify(this.remote)}: ${pushed.stderr.trim() || pushed.stdout.trim()}`,
      "check that this host may push to the remote (credentials, branch protection) and that the remote is reachable",
    );
  }

  /** Puts a run's candidate on the remote, where any host's merge leader can fetch it. */
  async publish(runId: string, commit: string): Promise<void> {
    await this.git([
      "push",
      "--quiet",
      "--no-verify",
      "--force",
      this.remote,
      `${commit}:${CANDIDATE_PREFIX}${runId}`,
    ]);
  }

  /** Fetches a run's candidate published by another host; false when the remote has none. */
  async fetchCandidate(runId: string): Promise<boolean> {
    const ref = `${CANDIDATE_PREFIX}${runId}`;
    const fetched = await this.refUpdates.run(() =>
      this.git(["fetch", "--quiet", "--no-tags", this.remote, `+${ref}:${ref}`], [1, 128]),
    );
    return fetched.exitCode === 0;
  }

  /** Removes a run's candidate from the remote (best effort: a leftover ref costs only space). */
  async forget(runId: string): Promise<void> {
    const ref = `${CANDIDATE_PREFIX}${runId}`;
    await this.git(["push", "--quiet", "--no-verify", this.remote, `:${ref}`], [1, 128]);
    await this.git(["update-ref", "-d", ref], [1, 128]);
  }

  private git(args: string[], okCodes?: number[]) {
    return git(args, { cwd: this.repoPath, ...(okCodes ? { okCodes } : {}) });
  }
}
