import { createHash, randomUUID } from "node:crypto";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NightshiftError } from "../errors/index.ts";

/** Tells this process from an earlier one that had the same pid (a container's pid 1, say). */
const PROCESS_TOKEN = randomUUID();
/** Looks at a lock being taken over by someone else this many times before giving up. */
const ATTEMPTS = 100;

interface Owner {
  pid: number;
  token?: string;
  purpose: string;
}

/**
 * The embedded ledger is one PGlite data directory, which only one process may open. The lock file
 * holds the owner's pid; a lock left by a killed process is taken over.
 *
 * Taking over is where the old lock raced: two starters that read the same dead pid both removed
 * "the" lock, and the slower one removed the faster one's fresh lock, so both owned the directory.
 * A file system has no compare-and-delete, so removal is made exclusive instead: only the holder
 * of `<lock>.takeover-<hash of the dead lock's content>` may remove that lock, and it removes it
 * only if the file still holds that very content (every lock carries a random nonce, so a fresh
 * lock never matches). The takeover file is itself a lock of the same kind, so a taker killed in
 * the middle is taken over in turn. After removal everyone races to create the lock again, and
 * creation is atomic and complete (written aside, then hard-linked into place), so exactly one
 * wins and nobody ever reads a half-written lock. proper-lockfile was considered: it decides
 * staleness by mtime (a lock not touched for a while), which a blocked event loop can fake, and
 * its stale takeover removes and re-creates in two steps, the same race.
 */
export async function lockDataDir(dataDir: string, purpose: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, "..", `${path.basename(dataDir)}.lock`);
  const content = JSON.stringify({
    pid: process.pid,
    token: PROCESS_TOKEN,
    nonce: randomUUID(),
    purpose,
    since: new Date(),
  });
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const result = await acquire(file, content);
    if (result === "won") {
      return async () => {
        // Only our own lock: never one that was (wrongly) taken over and is someone else's now.
        if ((await readLock(file)) === content) await rm(file, { force: true });
      };
    }
    if (result !== "retry") {
      throw new NightshiftError(
        "ledger_busy",
        `the ledger in ${dataDir} is in use by pid ${result.pid} (${result.purpose})`,
        {
          hint: "wait for that process to finish or stop it; to share one ledger between processes use PostgreSQL (set NIGHTSHIFT_DATABASE_URL)",
          details: { pid: result.pid, dataDir },
        },
      );
    }
    // A dead owner's lock that another starter is removing: look again in a moment.
    await sleep(5 + Math.random() * 20);
  }
  throw new NightshiftError("ledger_busy", `could not lock the ledger in ${dataDir}`, {
    hint: "another process keeps taking the ledger over; try again",
  });
}

/** "won", "retry" (the lock changed hands meanwhile), or the live owner in the way. */
async function acquire(file: string, content: string): Promise<"won" | "retry" | Owner> {
  if (await create(file, content)) return "won";
  const seen = await readLock(file);
  if (seen === undefined) return "retry";
  const owner = parseOwner(seen);
  if (owner && isLive(owner)) return owner;
  // The owner is dead (or the file is not a lock we can read). Only the holder of this very
  // instance's takeover lock may remove it; everyone else waits and looks again.
  const guard = `${file}.takeover-${createHash("sha256").update(seen).digest("hex").slice(0, 16)}`;
  if ((await acquire(guard, content)) !== "won") return "retry";
  try {
    if ((await readLock(file)) === seen) await rm(file, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
  return "retry";
}

/** Creates `file` with `content` unless it exists; it appears whole or not at all. */
async function create(file: string, content: string): Promise<boolean> {
  const aside = `${file}.${randomUUID()}.tmp`;
  await writeFile(aside, content);
  try {
    await link(aside, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    await rm(aside, { force: true });
  }
}

async function readLock(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function parseOwner(text: string): Owner | undefined {
  try {
    const parsed = JSON.parse(text) as { pid?: unknown; token?: unknown; purpose?: unknown };
    if (typeof parsed.pid !== "number") return undefined;
    return {
      pid: parsed.pid,
      ...(typeof parsed.token === "string" ? { token: parsed.token } : {}),
      purpose: String(parsed.purpose ?? "unknown"),
    };
  } catch {
    return undefined;
  }
}

function isLive(owner: Owner): boolean {
  // Our pid: this very process (another opener in it), or an earlier process that had our pid.
  if (owner.pid === process.pid) return owner.token === PROCESS_TOKEN;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
