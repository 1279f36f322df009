import { readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";

/**
 * What a line that runs for days keeps on disk besides its ledger: the gateway's transcripts (one
 * file per run) and its own log. Kept worktrees have their own caps (see workspace/Workspaces).
 */
export interface RetentionLimits {
  keepTranscripts: number;
  maxTranscriptsBytes: number;
  /** nightshift.log is rotated past this size... */
  maxLogBytes: number;
  /** ...and this many rotated logs are kept (nightshift.log.1 the newest). */
  keepLogs: number;
  checkIntervalMs: number;
}

interface Entry {
  file: string;
  bytes: number;
  mtimeMs: number;
}

/**
 * Removes the oldest files of `dir` whose names match, until at most `keep` are left and they
 * take at most `maxBytes`. Returns the files removed. A missing folder has nothing to remove.
 */
export async function pruneOldest(
  dir: string,
  options: { keep: number; maxBytes: number; match: RegExp },
): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => options.match.test(n));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const entries: Entry[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile()) entries.push({ file, bytes: info.size, mtimeMs: info.mtimeMs });
  }
  // Newest first: what is kept is a prefix of this list.
  entries.sort((a, b) => b.mtimeMs - a.mtimeMs || b.file.localeCompare(a.file));
  const removed: string[] = [];
  let bytes = entries.reduce((sum, e) => sum + e.bytes, 0);
  let count = entries.length;
  for (const entry of entries.reverse()) {
    if (count <= options.keep && bytes <= options.maxBytes) break;
    await rm(entry.file, { force: true });
    removed.push(entry.file);
    count -= 1;
    bytes -= entry.bytes;
  }
  return removed;
}

/**
 * Rotates `file` once it is larger than `maxBytes`: file.1 becomes file.2 and so on (the oldest
 * beyond `keep` removed), the file becomes file.1, and `reopen` makes the writer start a new one.
 * Returns whether it rotated.
 */
export async function rotateFile(
  file: string,
  options: { maxBytes: number; keep: number },
  reopen: () => void,
): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  if (!info || info.size <= options.maxBytes) return false;
  await rm(`${file}.${options.keep}`, { force: true });
  for (let i = options.keep - 1; i >= 1; i--) {
    await rename(`${file}.${i}`, `${file}.${i + 1}`).catch(() => undefined);
  }
  if (options.keep > 0) await rename(file, `${file}.1`);
  else await rm(file, { force: true });
  reopen();
  return true;
}

/** Applies the retention limits now and then while the line runs. */
export class Housekeeper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> = Promise.resolve();

  constructor(
    private readonly paths: { transcriptsDir?: string; logFile?: string },
    private readonly limits: RetentionLimits,
    private readonly reopenLog: () => void,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.sweeping = this.sweep();
    this.timer = setInterval(() => {
      this.sweeping = this.sweeping.then(() => this.sweep());
    }, this.limits.checkIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.sweeping;
  }

  /** One pass; never rejects (a failure is logged, and the next pass tries again). */
  async sweep(): Promise<void> {
    try {
      const { transcriptsDir, logFile } = this.paths;
      if (transcriptsDir) {
        const removed = await pruneOldest(transcriptsDir, {
          keep: this.limits.keepTranscripts,
          maxBytes: this.limits.maxTranscriptsBytes,
          match: /^run-\d+\.jsonl$/,
        });
        if (removed.length > 0)
          this.logger.info({ removed: removed.length }, "pruned old transcripts");
      }
      if (logFile) {
        const limits = { maxBytes: this.limits.maxLogBytes, keep: this.limits.keepLogs };
        if (await rotateFile(logFile, limits, this.reopenLog)) this.logger.info("rotated the log");
      }
    } catch (error) {
      this.logger.warn({ err: error }, "could not apply the retention limits");
    }
  }
}
