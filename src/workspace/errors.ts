import { NightshiftError } from "../errors/index.ts";

/**
 * Every failure in this folder is a WorkspaceError with a stable `code` so callers (the line, the
 * merge queue, the CLI) can branch on it, and a `hint` that tells a person how to fix it.
 */
export type WorkspaceErrorCode =
  | "git_failed"
  | "repo_not_found"
  | "branch_not_found"
  | "branch_checked_out"
  | "not_fast_forward"
  | "invalid_run_id"
  | "commit_not_found"
  | "remote_unreachable";

export class WorkspaceError extends NightshiftError {
  declare readonly code: WorkspaceErrorCode;
  declare readonly hint: string;

  constructor(code: WorkspaceErrorCode, message: string, hint: string, options?: ErrorOptions) {
    super(code, message, { hint, cause: options?.cause });
    this.name = "WorkspaceError";
  }
}

export class GitError extends WorkspaceError {
  readonly command: string[];
  readonly cwd: string;
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(args: { command: string[]; cwd: string; exitCode: number | null; stderr: string }) {
    const shown = ["git", ...args.command].join(" ");
    super(
      "git_failed",
      `git command failed (exit ${args.exitCode ?? "none"}): ${shown}\n  in ${args.cwd}\n  ${args.stderr.trim() || "(no stderr)"}`,
      "read git's message above; if the repository is in a broken state run `git worktree prune` and `git status` in it",
    );
    this.name = "GitError";
    this.command = args.command;
    this.cwd = args.cwd;
    this.exitCode = args.exitCode;
    this.stderr = args.stderr;
  }
}
