import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { cliEnv, git, makeRepo, TempDirs } from "../support/cli.ts";

// The install path the README gives: `npm pack`, then `npm install -g` of the tarball, here into a
// temporary prefix. The tarball's dependencies come from npm's cache where it holds them, else
// from the registry (CI has one). `npm pack --ignore-scripts` packs the dist/ vitest's global
// setup keeps current, instead of rebuilding it under the other tests' feet.

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
const temps = new TempDirs();
afterAll(() => temps.removeAll());

describe("npm install -g of the npm pack tarball", () => {
  it("gives a nightshift command that works from any directory, from dist/ alone", async () => {
    const work = await temps.make("nightshift-install-");
    const packed = await run(
      "npm",
      ["pack", "--ignore-scripts", "--silent", "--pack-destination", work],
      { cwd: ROOT, env: cliEnv },
    );
    const tarball = path.join(work, packed.stdout.trim().split("\n").at(-1)!);
    const prefix = path.join(work, "prefix");
    await run(
      "npm",
      ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", tarball],
      { cwd: work, env: cliEnv, timeout: 300_000 },
    );

    const installed = path.join(prefix, "lib", "node_modules", "nightshift");
    expect((await readdir(installed)).sort()).toEqual(
      expect.arrayContaining(["bin", "dist", "package.json"]),
    );
    expect(await readdir(installed)).not.toContain("src");
    expect(await readdir(path.join(installed, "dist", "console", "web"))).toContain("index.html");

    const nightshift = path.join(prefix, "bin", "nightshift");
    const repo = await makeRepo(temps);
    git(repo, "checkout", "--quiet", "--detach");
    const ns = (...args: string[]) => run(nightshift, args, { cwd: repo, env: cliEnv });

    const help = await ns("--help");
    expect(help.stderr).toBe("");
    expect(help.stdout).toContain("Usage: nightshift");
    await ns("init", "--provider", "simulator");
    await ns("add", "an order from an installed nightshift");
    const status = await ns("status");
    expect(status.stderr).toBe("");
    expect(status.stdout).toContain("an order from an installed nightshift");
  }, 600_000);
});
