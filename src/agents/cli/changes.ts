import { execFile } from "node:child_process";
import type { AgentEvent } from "../events.ts";

type FileChange = Extract<AgentEvent, { kind: "file_change" }>;

/**
 * The files a run changed, read from git rather than from the agent's account of itself: CLIs
 * change files through shells as often as through edit tools, and git sees both. The workspace is
 * a fresh worktree of main, so its status is exactly the run's work (ignored files excepted, which
 * the candidate commit leaves out too).
 */
export async function workspaceChanges(workspacePath: string): Promise<FileChange[]> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      "git",
      ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"],
      {
        cwd: workspacePath,
        env: { PATH: process.env.PATH ?? "", GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" },
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, out) => (error ? reject(error) : resolve(out)),
    );
  });
  const changes: FileChange[] = [];
  for (const entry of stdout.split("\0")) {
    if (entry.length < 4) continue;
    const status = entry.slice(0, 2);
    const file = entry.slice(3);
    const change = status.includes("D")
      ? "deleted"
      : status === "??" || status.includes("A")
        ? "created"
        : "modified";
    changes.push({ kind: "file_change", path: file, change });
  }
  return changes;
}
