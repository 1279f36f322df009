import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { demoOrders } from "../../src/sim/index.ts";
import { landedOrderTrailers, makeDemoRepo } from "../support/line.ts";

const BIN = fileURLToPath(new URL("../../bin/nightshift.js", import.meta.url));
const exec = promisify(execFile);
const cli = (...args: string[]) => exec(process.execPath, [BIN, ...args]);

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function until<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("a line running --forever", () => {
  it("takes orders added while it runs, and `status` shows it live", async () => {
    const repo = await makeDemoRepo({ brokenRate: 0, giveUpRate: 0 });
    cleanups.push(repo.cleanup);
    const config = path.join(repo.dir, "nightshift.toml");
    await writeFile(
      config,
      (await readFile(config, "utf8")).replace("poll_interval_ms = 2000", "poll_interval_ms = 200"),
    );
    const line: ChildProcess = spawn(
      process.execPath,
      [BIN, "run", "--forever", "--dir", repo.dir],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    line.stdout?.on("data", (chunk) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => line.on("exit", resolve));
    cleanups.push(async () => {
      line.kill("SIGKILL");
    });
    // Wait for the line to hold the ledger (its first snapshot), then add through the CLI.
    await until(
      async () =>
        (await readFile(path.join(repo.dir, ".nightshift", "status.json"), "utf8")) || undefined,
      "the first snapshot",
    );
    const order = demoOrders[0]!;
    const added = await cli("add", order.title, "--spec", order.spec, "--dir", repo.dir);
    expect(added.stdout).toMatch(/the ledger is held by pid \d+; 1 order\(s\) put in its inbox/);

    const landed = await until(async () => {
      const { stdout } = await cli("status", "--json", "--dir", repo.dir);
      const status = JSON.parse(stdout);
      return status.orders[0]?.status === "landed" ? status : undefined;
    }, "the added order to land");
    expect(landed.snapshot.pid).toBe(line.pid);
    expect(landed.orders[0].title).toBe(order.title);
    const human = await cli("status", "--dir", repo.dir);
    expect(human.stdout).toMatch(/live view from nightshift run \(pid \d+\)/);
    expect(human.stdout).toContain("landed");

    line.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output).toContain("stopping: runs in flight are cancelled");
    expect(landedOrderTrailers(repo.dir)).toEqual(["WO-1"]);
  });
});
