import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { Housekeeper, pruneOldest, rotateFile } from "../../src/line/index.ts";

let dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  dirs = [];
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-retention-"));
  dirs.push(dir);
  return dir;
}

/** Writes run-1 .. run-n, each older than the next (mtimes a minute apart). */
async function transcripts(dir: string, n: number, bytes = 100): Promise<void> {
  const start = Date.now() / 1000 - n * 60;
  for (let i = 1; i <= n; i++) {
    const file = path.join(dir, `run-${i}.jsonl`);
    await writeFile(file, "x".repeat(bytes));
    await utimes(file, start + i * 60, start + i * 60);
  }
}

const names = async (dir: string) => (await readdir(dir)).sort();

describe("retention", () => {
  it("keeps the newest transcripts within the count, removing the oldest", async () => {
    const dir = await tempDir();
    await transcripts(dir, 7);
    await writeFile(path.join(dir, "notes.txt"), "not a transcript");
    const removed = await pruneOldest(dir, { keep: 3, maxBytes: 1e9, match: /^run-\d+\.jsonl$/ });
    expect(removed.map((f) => path.basename(f))).toEqual([
      "run-1.jsonl",
      "run-2.jsonl",
      "run-3.jsonl",
      "run-4.jsonl",
    ]);
    expect(await names(dir)).toEqual(["notes.txt", "run-5.jsonl", "run-6.jsonl", "run-7.jsonl"]);
  });

  it("keeps the newest transcripts within the size", async () => {
    const dir = await tempDir();
    await transcripts(dir, 5, 1_000);
    await pruneOldest(dir, { keep: 100, maxBytes: 2_500, match: /^run-\d+\.jsonl$/ });
    expect(await names(dir)).toEqual(["run-4.jsonl", "run-5.jsonl"]);
    expect(
      await pruneOldest(path.join(dir, "missing"), { keep: 1, maxBytes: 1, match: /./ }),
    ).toEqual([]);
  });

  it("rotates a log past its size, keeping the newest rotated logs", async () => {
    const dir = await tempDir();
    const log = path.join(dir, "nightshift.log");
    let reopened = 0;
    const reopen = () => {
      reopened += 1;
    };
    for (let round = 1; round <= 4; round++) {
      await writeFile(log, `round ${round} `.repeat(20));
      expect(await rotateFile(log, { maxBytes: 100, keep: 2 }, reopen)).toBe(true);
    }
    expect(reopened).toBe(4);
    expect(await names(dir)).toEqual(["nightshift.log.1", "nightshift.log.2"]);
    expect(await readFile(`${log}.1`, "utf8")).toMatch(/^round 4/);
    expect(await readFile(`${log}.2`, "utf8")).toMatch(/^round 3/);
    await writeFile(log, "small");
    expect(await rotateFile(log, { maxBytes: 100, keep: 2 }, reopen)).toBe(false);
  });

  it("the housekeeper applies both, and the log goes on in a fresh file", async () => {
    const dir = await tempDir();
    const transcriptsDir = path.join(dir, "transcripts");
    await import("node:fs/promises").then((fs) => fs.mkdir(transcriptsDir));
    await transcripts(transcriptsDir, 6);
    const logFile = path.join(dir, "nightshift.log");
    const destination = pino.destination({ dest: logFile, sync: true });
    const logger = pino(destination);
    logger.info("x".repeat(2_000));
    const keeper = new Housekeeper(
      { transcriptsDir, logFile },
      {
        keepTranscripts: 2,
        maxTranscriptsBytes: 1e9,
        maxLogBytes: 1_000,
        keepLogs: 1,
        checkIntervalMs: 3_600_000,
      },
      () => destination.reopen(),
      logger,
    );
    await keeper.sweep();
    expect(await names(transcriptsDir)).toEqual(["run-5.jsonl", "run-6.jsonl"]);
    expect(await readFile(`${logFile}.1`, "utf8")).toMatch(/x{2000}/);
    // What was logged after the rotation is in the new file.
    expect(await readFile(logFile, "utf8")).toMatch(/rotated the log/);
    destination.end();
  });
});
