import type { Ledger, WorkOrder } from "../ledger/index.ts";
import type { GitHub, GitHubIssue } from "./client.ts";

/** The order key of an issue: an issue becomes an order once, whatever became of the order. */
export function issueKey(issue: { number: number }): string {
  return `gh-${issue.number}`;
}

/**
 * Takes in the open issues carrying one of `labels` as work orders (title, body as the spec, the
 * issue as the source), all or nothing, skipping issues already taken in. A person put the label
 * on, so they are queued unless `approval` asks for another look.
 */
export async function takeInIssues(
  github: GitHub,
  ledger: Ledger,
  options: { labels: string[]; approval: boolean },
): Promise<WorkOrder[]> {
  if (options.labels.length === 0) return [];
  const issues = await github.labelledIssues(options.labels);
  if (issues.length === 0) return [];
  const known = new Set(
    (await ledger.listOrders()).flatMap((o) => (o.key?.startsWith("gh-") ? [o.key] : [])),
  );
  const fresh = issues.filter((issue) => !known.has(issueKey(issue)));
  if (fresh.length === 0) return [];
  return ledger.addOrders(
    fresh.map((issue) => ({
      key: issueKey(issue),
      title: issue.title.length > 200 ? `${issue.title.slice(0, 197)}...` : issue.title,
      spec: `${issue.body}\n\n(GitHub issue ${github.repo}#${issue.number}: ${issue.url})`,
      acceptance: acceptanceOf(issue),
      source: `github:${github.repo}#${issue.number}`,
      ...(options.approval ? { needsApproval: true } : {}),
    })),
  );
}

/** The issue's "Acceptance" section if it has one, else the issue itself is the yardstick. */
function acceptanceOf(issue: GitHubIssue): string {
  const section = /^#+\s*acceptance[^\n]*\n([\s\S]*?)(?=^#+\s|$(?![\s\S]))/im.exec(issue.body);
  const text = section?.[1]?.trim();
  return text || `What issue #${issue.number} asks for is done, and the tests pass.`;
}
