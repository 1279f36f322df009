import { Octokit } from "@octokit/rest";
import { GitHubError } from "./errors.ts";

export interface GitHubSettings {
  /** "owner/name". */
  repo: string;
  /** The REST API's root: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise. */
  baseUrl: string;
  /** The environment variable holding the token. */
  tokenEnv: string;
}

export interface GitHubIssue {
  number: number;
  title: string;
  body: string;
  url: string;
  labels: string[];
}

export interface PullRequest {
  number: number;
  url: string;
}

/** What nightshift asks of GitHub: labelled issues in, pull requests out. */
export interface GitHub {
  readonly repo: string;
  labelledIssues(labels: string[]): Promise<GitHubIssue[]>;
  openPullRequest(pr: {
    head: string;
    base: string;
    title: string;
    body: string;
  }): Promise<PullRequest>;
  /** The open pull request from `head` (a branch of this repository) into `base`, if there is one. */
  findOpenPullRequest(pr: { head: string; base: string }): Promise<PullRequest | undefined>;
}

const PAGE = 100;
/** More pages than this of open labelled issues is a misconfigured label, not a backlog. */
const MAX_PAGES = 10;

/**
 * The GitHub REST API through the official client (@octokit/rest: no retry or throttling plugin,
 * so a refusal reaches the caller at once and is told as one of GitHubError's codes).
 */
export function openGitHub(settings: GitHubSettings, env: NodeJS.ProcessEnv = process.env): GitHub {
  const token = env[settings.tokenEnv];
  if (!token) {
    throw new GitHubError(
      "github_token_missing",
      `no GitHub token: the environment variable ${settings.tokenEnv} is not set`,
      {
        hint: `export ${settings.tokenEnv}=<a token with issues read and pull requests write access>, or name another variable in [github] token_env`,
      },
    );
  }
  const [owner = "", repo = ""] = settings.repo.split("/");
  const octokit = new Octokit({
    auth: token,
    baseUrl: settings.baseUrl.replace(/\/+$/, ""),
    userAgent: "nightshift",
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw describeFailure(error, what, settings);
    }
  };
  return {
    repo: settings.repo,
    async labelledIssues(labels) {
      const found = new Map<number, GitHubIssue>();
      // GitHub's `labels` filter wants every label at once; any one of ours is enough, so one
      // listing per label.
      for (const label of labels) {
        for (let page = 1; page <= MAX_PAGES; page++) {
          const { data } = await call(`list the open issues labelled "${label}"`, () =>
            octokit.rest.issues.listForRepo({
              owner,
              repo,
              state: "open",
              labels: label,
              per_page: PAGE,
              page,
            }),
          );
          for (const issue of data) {
            if (issue.pull_request) continue; // the issues API lists pull requests too
            found.set(issue.number, {
              number: issue.number,
              title: issue.title,
              body: issue.body ?? "",
              url: issue.html_url,
              labels: issue.labels.map((l) => (typeof l === "string" ? l : (l.name ?? ""))),
            });
          }
          if (data.length < PAGE) break;
        }
      }
      return [...found.values()].sort((a, b) => a.number - b.number);
    },
    async openPullRequest(pr) {
      const { data } = await call(`open a pull request from ${pr.head} into ${pr.base}`, () =>
        octokit.rest.pulls.create({ owner, repo, ...pr }),
      );
      return { number: data.number, url: data.html_url };
    },
    async findOpenPullRequest(pr) {
      const { data } = await call(`look for an open pull request from ${pr.head}`, () =>
        octokit.rest.pulls.list({
          owner,
          repo,
          state: "open",
          head: `${owner}:${pr.head}`,
          base: pr.base,
          per_page: 1,
        }),
      );
      const found = data[0];
      return found ? { number: found.number, url: found.html_url } : undefined;
    },
  };
}

function describeFailure(error: unknown, what: string, settings: GitHubSettings): GitHubError {
  const e = error as {
    status?: number;
    message?: string;
    response?: { headers?: Record<string, string | undefined>; data?: { message?: string } };
  };
  const status = e.status;
  const headers = e.response?.headers ?? {};
  const said = e.response?.data?.message ?? e.message ?? String(error);
  const where = `${settings.baseUrl} (${settings.repo})`;
  if (status === undefined) {
    return new GitHubError("github_failed", `could not ${what} at ${where}: ${said}`, {
      hint: "check [github] base_url and the network",
      cause: error,
    });
  }
  const remaining = headers["x-ratelimit-remaining"];
  const reset = Number(headers["x-ratelimit-reset"]);
  if ((status === 403 || status === 429) && (remaining === "0" || headers["retry-after"])) {
    const resetAt = Number.isFinite(reset)
      ? new Date(reset * 1000)
      : new Date(Date.now() + Number(headers["retry-after"] ?? 60) * 1000);
    return new GitHubError(
      "github_rate_limited",
      `GitHub's rate limit stopped the request to ${what} (${said}); it resets at ${resetAt.toISOString()}`,
      {
        hint: "wait until then (the line tries again on its next round)",
        status,
        resetAt,
        cause: error,
      },
    );
  }
  switch (status) {
    case 401:
      return new GitHubError(
        "github_unauthorized",
        `GitHub refused the token in ${settings.tokenEnv} to ${what}: ${said}`,
        {
          hint: `set ${settings.tokenEnv} to a valid token (a fine-grained token with Issues: read and Pull requests: write)`,
          status,
          cause: error,
        },
      );
    case 403:
      return new GitHubError(
        "github_forbidden",
        `the token in ${settings.tokenEnv} may not ${what}: ${said}`,
        {
          hint: "give the token access to the repository (Issues: read, Contents and Pull requests: write)",
          status,
          cause: error,
        },
      );
    case 404:
      return new GitHubError(
        "github_not_found",
        `GitHub found no repository ${settings.repo} at ${settings.baseUrl} to ${what}: ${said}`,
        {
          hint: "check [github] repo (owner/name) and base_url; a private repository also answers 404 to a token without access",
          status,
          cause: error,
        },
      );
    case 422:
      return new GitHubError("github_invalid", `GitHub refused to ${what}: ${said}`, {
        hint: "the branch may not have been pushed, or a pull request for it is already open",
        status,
        cause: error,
      });
    default:
      return new GitHubError(
        "github_failed",
        `GitHub answered ${status} when asked to ${what}: ${said}`,
        {
          hint: "try again later",
          status,
          cause: error,
        },
      );
  }
}
