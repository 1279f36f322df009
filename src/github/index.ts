export {
  type GitHub,
  type GitHubIssue,
  type GitHubSettings,
  openGitHub,
  type PullRequest,
} from "./client.ts";
export { GitHubError, type GitHubErrorCode } from "./errors.ts";
export { issueKey, takeInIssues } from "./intake.ts";
export { IssuePoller } from "./poller.ts";
export { type Proposal, proposeChange } from "./pull-request.ts";
