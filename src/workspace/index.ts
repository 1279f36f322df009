export { GitError, WorkspaceError, type WorkspaceErrorCode } from "./errors.ts";
export {
  type CommitOptions,
  type KeptWorkspace,
  type RebaseResult,
  type Workspace,
  Workspaces,
  type WorkspacesOptions,
} from "./workspaces.ts";
