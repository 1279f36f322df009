import { InvalidArgumentError } from "commander";
import { openGitHub, takeInIssues } from "../../github/index.ts";
import { openFactory } from "../factory.ts";

/** `nightshift issues`: the open issues labelled for the line become work orders (once each). */
export async function issuesCommand(root: string, options: { label?: string[] }): Promise<string> {
  const factory = await openFactory(root, "nightshift issues");
  try {
    const gh = factory.config.github;
    if (!gh.repo) {
      throw new InvalidArgumentError(
        'no GitHub repository: set [github] repo = "owner/name" in nightshift.toml.',
      );
    }
    const labels = options.label?.length ? options.label : gh.labels;
    if (labels.length === 0) {
      throw new InvalidArgumentError(
        'no label to look for: set [github] labels = ["nightshift"] or pass --label.',
      );
    }
    const github = openGitHub({ repo: gh.repo, baseUrl: gh.base_url, tokenEnv: gh.token_env });
    const added = await takeInIssues(github, factory.ledger, { labels, approval: gh.approval });
    if (added.length === 0) return `no new issue labelled ${labels.join(" or ")} in ${gh.repo}`;
    return added
      .map(
        (o) =>
          `${o.status === "waiting" ? "waiting for approval" : "queued"} WO-${o.id}: ${o.title} (${o.source})`,
      )
      .join("\n");
  } finally {
    await factory.close();
  }
}
