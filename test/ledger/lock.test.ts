import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { isNightshiftError } from "../../src/errors/index.ts";
import { lockDataDir } from "../../src/ledger/lock.ts";

const TAKER = fileURLToPath(new URL("./fixtures/lock-taker.ts", import.meta.url));

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

/** A pid that was alive a moment ago and is not now: what a killed `nightshift run` leaves. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", ""]);
  return child.pid as number;
}

/** A ledger folder whose lock names a dead process. */
async function staleLock() {
  const root = await mkdtemp(path.join(os.tmpdir(), "nightshift-lock-"));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const dataDir = path.join(root, "ledger");
  await writeFile(
    path.join(root, "ledger.lock"),
    JSON.stringify({ pid: deadPid(), purpose: "nightshift run", since: new Date() }),
  );
  return { root, dataDir };
}

async function race(dataDir: string, takers: number) {
  const results = await Promise.allSettled(
    Array.from({ length: takers }, () => lockDataDir(dataDir, "racer")),
  );
  const won = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  for (const r of results) {
    if (r.status === "rejected") {
      expect(isNightshiftError(r.reason) && r.reason.code).toBe("ledger_busy");
    }
  }
  return won;
}

describe("the embedded ledger's lock", () => {
  it("is taken over from a dead owner by exactly one of many racing takers, round after round", async () => {
    for (let round = 0; round < 25; round++) {
      const { root, dataDir } = await staleLock();
      const won = await race(dataDir, 12);
      expect(won).toHaveLength(1);
      // No takeover files are left behind, and the winner's release frees the folder.
      expect((await readdir(root)).sort()).toEqual(["ledger", "ledger.lock"]);
      await won[0]!();
      expect(await readdir(root)).toEqual(["ledger"]);
    }
  });

  it("refuses a second opener in the same process while the first holds it", async () => {
    const { dataDir } = await staleLock();
    const unlock = await lockDataDir(dataDir, "first");
    await expect(lockDataDir(dataDir, "second")).rejects.toMatchObject({ code: "ledger_busy" });
    await unlock();
    const again = await lockDataDir(dataDir, "third");
    await again();
  });

  it("is taken over by exactly one of several processes that race for it", async () => {
    const { dataDir } = await staleLock();
    const children: { child: ChildProcess; lines: string[]; next: () => Promise<string> }[] = [];
    for (let i = 0; i < 6; i++) {
      const child = spawn(process.execPath, ["--import", "tsx", TAKER, dataDir], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      cleanups.push(async () => {
        if (child.exitCode === null) child.kill("SIGKILL");
      });
      const lines: string[] = [];
      const waiting: ((line: string) => void)[] = [];
      let buffer = "";
      child.stdout?.setEncoding("utf8");
      child.stdout?.on("data", (chunk: string) => {
        buffer += chunk;
        for (let at = buffer.indexOf("\n"); at >= 0; at = buffer.indexOf("\n")) {
          const line = buffer.slice(0, at);
          buffer = buffer.slice(at + 1);
          const waiter = waiting.shift();
          if (waiter) waiter(line);
          else lines.push(line);
        }
      });
      const next = () =>
        new Promise<string>((resolve) => {
          const line = lines.shift();
          if (line !== undefined) resolve(line);
          else waiting.push(resolve);
        });
      children.push({ child, lines, next });
    }
    // All loaded before any tries, so that they race rather than queue.
    for (const c of children) expect(await c.next()).toBe("ready");
    for (const c of children) c.child.stdin?.write("go\n");
    const verdicts = await Promise.all(children.map((c) => c.next()));
    expect(verdicts.filter((v) => v === "won")).toHaveLength(1);
    expect(verdicts.filter((v) => v === "busy")).toHaveLength(5);
    const exits = children.map(
      (c) => new Promise((resolve) => c.child.once("exit", (code) => resolve(code))),
    );
    for (const c of children) c.child.stdin?.end();
    expect(await Promise.all(exits)).toEqual(Array(6).fill(0));
  });
});
