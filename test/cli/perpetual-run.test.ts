import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, cli, cliEnv, git, makeRepo, TempDirs } from "../support/cli.ts";

// `nightshift run --forever` with [perpetual] sources: a dry queue is filled from the repository's
// TODO notes, the orders wait for approval, and the same note is not found twice across runs.

const temps = new TempDirs();
afterAll(() => temps.removeAll());

/** Starts `run --forever`, waits until its log says it found work, then stops it with SIGINT. */
async function runUntilFound(repo: string): Promise<number | null> {
  const log = path.join(repo, ".nightshift", "logs", "nightshift.log");
  const before = (await readFile(log, "utf8").catch(() => "")).length;
  const child = spawn(process.execPath, [BIN, "run", "--forever"], {
    cwd: repo,
    env: cliEnv,
    stdio: "ignore",
  });
  let running = true;
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      running = false;
      resolve(code);
    }),
  );
  const found = (async () => {
    while (running) {
      const text = (await readFile(log, "utf8").catch(() => "")).slice(before);
      if (text.includes("the queue ran dry: found")) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  // Waits on the log line (or the process ending early), not on time; vitest's timeout is the net.
  await Promise.race([found, exited]);
  child.kill("SIGINT");
  return exited;
}

describe("nightshift run --forever with perpetual sources", () => {
  it("turns TODO notes into waiting orders that say where they came from, once each", async () => {
    const repo = await makeRepo(temps, {
      "package.json": '{ "name": "x", "private": true, "scripts": { "test": "node -e 0" } }\n',
      "a.js": "// TODO: handle empty input\nexport const a = 1;\n",
    });
    git(repo, "checkout", "--quiet", "--detach");
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);
    const config = path.join(repo, "nightshift.toml");
    await writeFile(
      config,
      (await readFile(config, "utf8"))
        .replace("sources = []", 'sources = ["todo"]')
        .replace("interval_minutes = 10", "interval_minutes = 0"),
    );

    await runUntilFound(repo);
    const status = async () =>
      (
        JSON.parse((await cli(repo, ["status", "--json"])).stdout) as {
          orders: { status: string; source: string; title: string; scope: string[] }[];
        }
      ).orders;
    expect(await status()).toEqual([
      expect.objectContaining({
        status: "waiting",
        source: "todo:a.js:1",
        title: "Resolve TODO: handle empty input (a.js)",
        scope: ["a.js"],
      }),
    ]);

    // Rejected, and a second run: the note is not proposed again.
    expect((await cli(repo, ["reject", "WO-1"])).code).toBe(0);
    await runUntilFound(repo);
    expect((await status()).map((o) => o.status)).toEqual(["cancelled"]);
  });

  it("runs a [perpetual.lint] check in a checkout of main and turns its findings into a scoped order", async () => {
    const repo = await makeRepo(temps, {
      "package.json": '{ "name": "x", "private": true, "scripts": { "test": "node -e 0" } }\n',
      "a.js": "var a = 1;\nexport { a };\n",
    });
    git(repo, "checkout", "--quiet", "--detach");
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);
    const config = path.join(repo, "nightshift.toml");
    // A linter of its own: grep over the checkout, in the generic file:line:col format.
    const check = String.raw`grep -Hn '^var ' *.js | sed -E 's/^([^:]+):([0-9]+):.*/\1:\2:1: no-var: Unexpected var./'`;
    await writeFile(
      config,
      (await readFile(config, "utf8"))
        .replace("sources = []", 'sources = ["lint"]')
        .replace("interval_minutes = 10", "interval_minutes = 0")
        .replace(
          "commands = []",
          `commands = [{ name = "style", command = ${JSON.stringify(check)}, format = "generic" }]`,
        ),
    );

    await runUntilFound(repo);
    const { orders } = JSON.parse((await cli(repo, ["status", "--json"])).stdout) as {
      orders: { status: string; source: string; title: string; scope: string[]; spec: string }[];
    };
    expect(orders).toEqual([
      expect.objectContaining({
        status: "waiting",
        source: "lint:style:a.js",
        title: "Fix 1 style finding in a.js",
        scope: ["a.js"],
      }),
    ]);
    // The checkout it ran in is gone.
    expect(git(repo, "worktree", "list").trim().split("\n")).toHaveLength(1);
  });
});
