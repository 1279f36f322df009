import { lstat, readFile } from "node:fs/promises";
import path from "node:path";

/**
 * Where a worktree's git data lives. A linked worktree's `.git` is a file naming its admin dir
 * (`<repo>/.git/worktrees/run-N`), whose `commondir` names the shared `.git` (objects, refs,
 * config, hooks). The sandbox needs all of it readable for `git status/diff/log`, and none of it
 * writable: a writable HEAD or config would let the run move main or make the host's own git
 * (which commits the run's work) execute code of the run's choosing.
 */
export interface GitLayout {
  /** `<worktree>/.git`: a file (linked worktree) or a directory (plain clone). */
  dotGit: string;
  /** The worktree's own admin dir (same as commonDir for a plain clone). */
  adminDir: string;
  /** The shared `.git`. */
  commonDir: string;
}

export async function gitLayout(worktree: string): Promise<GitLayout | undefined> {
  const dotGit = path.join(worktree, ".git");
  const info = await lstat(dotGit).catch(() => null);
  if (!info) return undefined;
  if (info.isDirectory()) return { dotGit, adminDir: dotGit, commonDir: dotGit };
  if (!info.isFile()) return undefined;
  const pointer = /^gitdir:\s*(.+)$/m.exec(await readFile(dotGit, "utf8"))?.[1]?.trim();
  if (!pointer) return undefined;
  const adminDir = path.resolve(worktree, pointer);
  const common = await readFile(path.join(adminDir, "commondir"), "utf8").catch(() => null);
  const commonDir = common ? path.resolve(adminDir, common.trim()) : adminDir;
  return { dotGit, adminDir, commonDir };
}
