import { createHash } from "node:crypto";
import { readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * `status` is polled (by a shell prompt, a cron job, a console), and opening the embedded ledger
 * costs most of a CPU-second: PGlite compiles and starts PostgreSQL in WebAssembly each time. So
 * `status` keeps what it read last beside the ledger, keyed by a fingerprint of the ledger's data
 * folder (every file's path, size and modification time), and answers from it while the folder is
 * unchanged. PostgreSQL writes every commit to its WAL files at once, so any change to the ledger,
 * by any process, changes the fingerprint; opening and closing the ledger changes it too, which is
 * why the fingerprint is taken after `status` has closed the ledger it read.
 */
const CACHE_FILE = "status-cache.json";
/** Bump when the shape of the cached data changes. */
const FORMAT = 1;

export async function ledgerFingerprint(dataDir: string): Promise<string | undefined> {
  const hash = createHash("sha256");
  let files = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(file);
      } else {
        const info = await stat(file);
        hash.update(`${path.relative(dataDir, file)}\0${info.size}\0${info.mtimeMs}\n`);
        files += 1;
      }
    }
  };
  try {
    await walk(dataDir);
  } catch {
    return undefined;
  }
  return files > 0 ? `${FORMAT}:${hash.digest("hex")}` : undefined;
}

/** What the last `status` read, if the ledger has not changed since. */
export async function readStatusCache<T>(
  stateDir: string,
  dataDir: string,
): Promise<T | undefined> {
  let cached: { fingerprint?: string; data?: T };
  try {
    cached = JSON.parse(await readFile(path.join(stateDir, CACHE_FILE), "utf8"));
  } catch {
    return undefined;
  }
  const now = await ledgerFingerprint(dataDir);
  return now !== undefined && cached.fingerprint === now ? cached.data : undefined;
}

/** Call with the ledger closed, so the fingerprint is the one the next `status` will see. */
export async function writeStatusCache(
  stateDir: string,
  dataDir: string,
  data: unknown,
): Promise<void> {
  const fingerprint = await ledgerFingerprint(dataDir);
  if (fingerprint === undefined) return;
  const file = path.join(stateDir, CACHE_FILE);
  await writeFile(`${file}.${process.pid}.tmp`, JSON.stringify({ fingerprint, data }));
  await rename(`${file}.${process.pid}.tmp`, file);
}
