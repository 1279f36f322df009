import { mkdir, open, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { NightshiftError } from "../errors/index.ts";

/**
 * The embedded ledger is one PGlite data directory, which only one process may open. The lock file
 * holds the owner's pid; a lock left by a killed process is taken over.
 */
export async function lockDataDir(dataDir: string, purpose: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, "..", `${path.basename(dataDir)}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, "wx");
      await handle.writeFile(JSON.stringify({ pid: process.pid, purpose, since: new Date() }));
      await handle.close();
      return async () => {
        await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = await readOwner(file);
      if (owner && owner.pid !== process.pid && isAlive(owner.pid)) {
        throw new NightshiftError(
          "ledger_busy",
          `the ledger in ${dataDir} is in use by pid ${owner.pid} (${owner.purpose})`,
          {
            hint: "wait for that process to finish or stop it; to share one ledger between processes use PostgreSQL (set NIGHTSHIFT_DATABASE_URL)",
            details: { pid: owner.pid, dataDir },
          },
        );
      }
      await rm(file, { force: true });
    }
  }
  throw new NightshiftError("ledger_busy", `could not lock the ledger in ${dataDir}`);
}

async function readOwner(file: string): Promise<{ pid: number; purpose: string } | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as { pid?: unknown; purpose?: unknown };
    return typeof parsed.pid === "number"
      ? { pid: parsed.pid, purpose: String(parsed.purpose ?? "unknown") }
      : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
