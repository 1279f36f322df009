import { execFile, execFileSync } from "node:child_process";
import { copyFile, mkdir, symlink } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { whyNotBuilt } from "../../bin/built.js";
import { cli, cliEnv, git, makeRepo, TempDirs } from "../support/cli.ts";

// The compiled CLI in dist/ (vitest's global setup builds it when src/ is newer), started as a
// user starts it: `node bin/nightshift.js`. How fast it starts is bench:cli's business, not a test's.

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
const temps = new TempDirs();
afterAll(() => temps.removeAll());

describe("bin/nightshift.js with dist/ built", () => {
  it("finds dist/ current, so it runs the compiled CLI without a word on stderr", async () => {
    expect(whyNotBuilt(ROOT)).toBeUndefined();
    const result = await cli(await temps.make("nightshift-cwd-"), ["--help"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    for (const command of [
      "init",
      "add",
      "run",
      "doctor",
      "status",
      "demo",
      "sim",
      "console",
      "watch",
    ]) {
      expect(result.stdout).toContain(command);
    }
  });

  it("answers status, and answers it again from its cache until the ledger changes", async () => {
    const repo = await makeRepo(temps);
    git(repo, "checkout", "--quiet", "--detach");
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);
    expect((await cli(repo, ["add", "first order"])).code).toBe(0);

    const first = await cli(repo, ["status"]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("first order");
    const again = await cli(repo, ["status"]);
    expect(again).toEqual(first);

    expect((await cli(repo, ["add", "second order"])).code).toBe(0);
    const after = await cli(repo, ["status", "--json"]);
    expect(after.code).toBe(0);
    const titles = (JSON.parse(after.stdout) as { orders: { title: string }[] }).orders.map(
      (o) => o.title,
    );
    expect(titles).toEqual(["first order", "second order"]);
  });

  it("ships its non-TypeScript files beside the code that reads them", () => {
    const listed = execFileSync("find", ["dist", "-type", "f"], { cwd: ROOT, encoding: "utf8" });
    expect(listed).toContain("dist/cli/main.js");
    expect(listed).toContain("dist/gateway/prices.json");
    // Plain scripts other processes run: the sandbox's gateway relay and the ledger's worker thread.
    expect(listed).toContain("dist/sandbox/relay.mjs");
    expect(listed).toContain("dist/ledger/pglite-worker.mjs");
    expect(listed).toContain("dist/ledger/migrations/0001_line.sql");
    // The console's UI, built by Vite; its sources are not shipped.
    expect(listed).toContain("dist/console/web/index.html");
    expect(listed).toMatch(/dist\/console\/web\/assets\/index-[\w-]+\.js/);
    expect(listed).not.toContain(".tsx");
  });

  it("runs the sources through tsx, and says so, when dist/ is missing or older than src/", async () => {
    // A copy of the package without dist/: bin/ copied, src/ and node_modules/ linked.
    const pkg = await temps.make("nightshift-unbuilt-");
    await mkdir(path.join(pkg, "bin"));
    for (const file of ["nightshift.js", "built.js"]) {
      await copyFile(path.join(ROOT, "bin", file), path.join(pkg, "bin", file));
    }
    await copyFile(path.join(ROOT, "package.json"), path.join(pkg, "package.json"));
    await symlink(path.join(ROOT, "src"), path.join(pkg, "src"));
    await symlink(path.join(ROOT, "node_modules"), path.join(pkg, "node_modules"));

    // Rejects on a non-zero exit.
    const result = await run(process.execPath, [path.join(pkg, "bin", "nightshift.js"), "--help"], {
      cwd: pkg,
      env: cliEnv,
    });
    expect(result.stdout).toContain("Usage: nightshift");
    expect(result.stderr).toContain("dist/ is not built");
    expect(result.stderr).toContain("npm run build");
  });
});
