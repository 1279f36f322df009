import { lstatSync, readdirSync } from "node:fs";
import { rm, truncate } from "node:fs/promises";
import path from "node:path";

/** What a file of the workspace was before a command ran: enough to undo what it added. */
interface Entry {
  size: number;
  directory: boolean;
}

/** The workspace's files and their sizes before a command, and the disk they used. */
export interface WorkspaceSnapshot {
  readonly entries: Map<string, Entry>;
  readonly bytes: number;
}

/** Entries walked between two yields to the event loop (the gateway shares this process). */
const BATCH = 500;

/**
 * Walks the workspace from the host (the sandbox cannot stop or fool this walk), in small
 * synchronous batches: far faster than one promise per file, and the event loop still turns.
 * `stopAbove` ends the walk early once that many bytes were counted: the disk watch needs only
 * "over or not". The worktree's own .git is skipped: it is read-only inside the sandbox.
 */
export async function walkWorkspace(
  dir: string,
  stopAbove = Number.POSITIVE_INFINITY,
): Promise<WorkspaceSnapshot> {
  const entries = new Map<string, Entry>();
  let bytes = 0;
  let sinceYield = 0;
  const stack = [dir];
  while (stack.length > 0 && bytes <= stopAbove) {
    const current = stack.pop() as string;
    let names: string[];
    try {
      names = readdirSync(current);
    } catch {
      continue;
    }
    for (const name of names) {
      if (current === dir && name === ".git") continue;
      const file = path.join(current, name);
      const info = lstatSync(file, { throwIfNoEntry: false });
      if (!info) continue;
      bytes += info.blocks > 0 ? info.blocks * 512 : info.size;
      entries.set(file, { size: info.size, directory: info.isDirectory() });
      if (info.isDirectory()) stack.push(file);
    }
    sinceYield += names.length;
    if (sinceYield >= BATCH) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return { entries, bytes };
}

/**
 * Puts the workspace back as `before` found it, as far as size goes: what the command created is
 * removed and what it grew is cut back to its old length (an append undone). Content it rewrote
 * in place stays; the disk it took does not. Returns the paths removed or cut, for the record.
 */
export async function restoreWorkspace(dir: string, before: WorkspaceSnapshot): Promise<string[]> {
  const now = await walkWorkspace(dir);
  const undone: string[] = [];
  for (const [file, entry] of now.entries) {
    const old = before.entries.get(file);
    if (!old) {
      // A new folder goes with everything in it; its children are then skipped as gone.
      if (!isUnder(file, undone)) {
        await rm(file, { recursive: true, force: true });
        undone.push(file);
      }
    } else if (!entry.directory && !old.directory && entry.size > old.size) {
      await truncate(file, old.size).catch(() => undefined);
      undone.push(file);
    }
  }
  return undone.map((file) => path.relative(dir, file));
}

function isUnder(file: string, dirs: string[]): boolean {
  return dirs.some((dir) => file.startsWith(dir + path.sep));
}
