/** What an agent is told about one work order. Drivers pass this text to their agent as is. */
export interface OrderBrief {
  id: number;
  title: string;
  spec: string;
  acceptance: string;
  scope: string[];
  attempt: number;
  /** What the ratchet said about the previous attempt, if it failed. */
  feedback: string | null;
  testCommand: string;
}

export const FEEDBACK_HEADING = "## What went wrong in the previous attempt";

export function buildPrompt(brief: OrderBrief): string {
  const parts = [
    `Work order WO-${brief.id}: ${brief.title}`,
    brief.spec ? `## Specification\n${brief.spec}` : "",
    brief.acceptance ? `## Acceptance\n${brief.acceptance}` : "",
    brief.scope.length > 0 ? `## Scope\nChange only files under: ${brief.scope.join(", ")}` : "",
    [
      "## How your work is judged",
      "You work in a git worktree of the repository (your current directory). When you stop,",
      "every change you made there is committed as one candidate. It lands only if this command",
      `passes, before and after rebasing onto the latest main: \`${brief.testCommand}\`.`,
      "Add or update tests for what you change. Do not edit unrelated files.",
    ].join("\n"),
    brief.feedback
      ? `${FEEDBACK_HEADING} (attempt ${brief.attempt - 1})\n${brief.feedback}\nFix the cause; start from the current files.`
      : "",
  ];
  return parts.filter(Boolean).join("\n\n");
}
