import { chmod, lstat, readdir, rm } from "node:fs/promises";
import { join } from "node:path";

/** Bytes a directory tree occupies on disk; symlinks are counted, never followed. */
export async function diskUsage(path: string): Promise<number> {
  let stats: Awaited<ReturnType<typeof lstat>>;
  try {
    stats = await lstat(path);
  } catch {
    return 0;
  }
  const own = allocatedBytes(stats);
  if (!stats.isDirectory()) return own;
  const entries = await readdir(path).catch(() => [] as string[]);
  let total = own;
  for (const entry of entries) total += await diskUsage(join(path, entry));
  return total;
}

function allocatedBytes(stats: { blocks: number; size: number }): number {
  // Blocks are what fills a disk; some filesystems report none, so fall back to the apparent size.
  return stats.blocks > 0 ? stats.blocks * 512 : stats.size;
}

/**
 * Deletes a tree even when an agent left read-only directories behind (rm needs write permission
 * on a directory to unlink its entries), so a stubborn worktree can never defeat the disk caps.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch {
    await makeWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(path: string): Promise<void> {
  const stats = await lstat(path).catch(() => null);
  if (!stats?.isDirectory()) return;
  await chmod(path, 0o700).catch(() => undefined);
  const entries = await readdir(path).catch(() => [] as string[]);
  for (const entry of entries) await makeWritable(join(path, entry));
}
