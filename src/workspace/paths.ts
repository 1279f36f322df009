import { realpath } from "node:fs/promises";
import { isAbsolute, relative, resolve } from "node:path";
import { WorkspaceError } from "./errors.ts";

// Run ids become both a directory name and part of a ref name, so they must be safe for both.
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

export function assertValidRunId(runId: string): void {
  if (RUN_ID.test(runId) && !runId.includes("..") && !runId.endsWith(".lock")) return;
  throw new WorkspaceError(
    "invalid_run_id",
    `run id ${JSON.stringify(runId)} cannot name a worktree and a branch`,
    "use 1-100 characters from [A-Za-z0-9_.-], starting with a letter or digit, without '..' or a '.lock' suffix",
  );
}

/** Canonical form for comparing paths; git may report a path through a symlink we did not use. */
export async function canonical(path: string): Promise<string> {
  return realpath(path).catch(() => resolve(path));
}

export function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}
