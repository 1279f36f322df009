import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { openLedger } from "../../src/ledger/index.ts";

const DIER = fileURLToPath(new URL("./fixtures/add-and-die.ts", import.meta.url));

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

/**
 * Why ids jump by about 32 after a crash (issue 11): PostgreSQL, and PGlite which is PostgreSQL,
 * writes a sequence's state to the WAL 32 values ahead of what it hands out (SEQ_LOG_VALS), so
 * that most nextval() calls cost no WAL write. A clean shutdown records the true value; after a
 * crash, recovery replays the WAL and the sequence resumes after the values it had logged ahead.
 * Sequence `cache` is 1 already, so there is nothing to tune: ids are unique and increasing, never
 * dense, and nothing in nightshift may read a gap as a loss. A run's number within its order is
 * its `attempt`, which is dense.
 */
it("after a crash, the embedded ledger skips the ids it had logged ahead, and loses nothing", async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), "nightshift-seq-"));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const dataDir = path.join(root, "ledger");
  let printed = "";
  try {
    execFileSync(process.execPath, ["--import", "tsx", DIER, dataDir], { encoding: "utf8" });
  } catch (error) {
    // Killed by its own SIGKILL, as intended: what it printed before dying is the first id.
    printed = String((error as { stdout?: string }).stdout ?? "");
  }
  const first = Number(printed.trim());
  expect(first).toBe(1);

  const ledger = await openLedger({ kind: "embedded", dataDir }, "test");
  try {
    const [after] = await ledger.addOrders([{ title: "after the crash" }]);
    expect((await ledger.listOrders()).map((o) => o.title)).toEqual([
      "before the crash",
      "after the crash",
    ]);
    // The jump itself: the values logged ahead of 1 were never handed out.
    expect(after!.id).toBeGreaterThan(first + 1);
    expect(after!.id).toBeLessThanOrEqual(first + 33);
  } finally {
    await ledger.close();
  }
});
