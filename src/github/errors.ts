import { NightshiftError } from "../errors/index.ts";

export type GitHubErrorCode =
  | "github_token_missing"
  | "github_unauthorized"
  | "github_forbidden"
  | "github_not_found"
  | "github_rate_limited"
  | "github_invalid"
  | "github_failed";

/** A GitHub API call that failed, with what to do about it. */
export class GitHubError extends NightshiftError {
  constructor(
    code: GitHubErrorCode,
    message: string,
    options: { hint: string; status?: number; resetAt?: Date; cause?: unknown },
  ) {
    super(code, message, {
      hint: options.hint,
      details: {
        ...(options.status !== undefined ? { status: options.status } : {}),
        ...(options.resetAt ? { resetAt: options.resetAt.toISOString() } : {}),
      },
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.name = "GitHubError";
  }
}
