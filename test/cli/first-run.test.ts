import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli, git, makeRepo, TempDirs } from "../support/cli.ts";

// A new user's first steps on their own repository: the simulator is never a silent default.

const temps = new TempDirs();
afterAll(() => temps.removeAll());

/** A small JavaScript project, with a test the gates could run. */
const JS_PROJECT = {
  "package.json": '{ "name": "shop", "private": true, "scripts": { "test": "node --test" } }\n',
  "index.js": "export const hello = () => 'hello';\n",
};

async function statusOf(repo: string) {
  const result = await cli(repo, ["status", "--json"]);
  expect(result.stderr).toBe("");
  return JSON.parse(result.stdout) as {
    orders: { id: number; status: string; attempts?: number }[];
    runs: unknown[];
  };
}

describe("nightshift init on a user's repository", () => {
  it("configures the provider whose key is in the environment", async () => {
    const repo = await makeRepo(temps);
    const result = await cli(repo, ["init"], { env: { ANTHROPIC_API_KEY: "sk-ant-test" } });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("providers: anthropic (ANTHROPIC_API_KEY is set)");
    const text = await readFile(path.join(repo, "nightshift.toml"), "utf8");
    expect(text).toContain("[providers.anthropic]");
    expect(text).toContain('model = "claude-sonnet-5-5"');
    expect(text).not.toMatch(/^\[providers\.simulator\]/m);
  });

  it("with no key and nobody at a terminal, configures no provider and says so", async () => {
    const repo = await makeRepo(temps);
    const result = await cli(repo, ["init"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("NOTE: no model provider is configured");
    expect(await readFile(path.join(repo, "nightshift.toml"), "utf8")).not.toMatch(
      /^\[providers\./m,
    );
  });

  it("refuses an unknown provider kind, naming the kinds", async () => {
    const repo = await makeRepo(temps);
    const result = await cli(repo, ["init", "--provider", "antropic"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('unknown provider kind "antropic"');
    expect(result.stderr).toContain("anthropic, openai, google, openai-compatible, simulator");
  });
});

describe("nightshift run on a user's repository", () => {
  it("without a provider, refuses to start with the fix, and the order keeps all its attempts", async () => {
    const repo = await makeRepo(temps, JS_PROJECT);
    expect((await cli(repo, ["init"])).code).toBe(0);
    git(repo, "checkout", "--quiet", "--detach");
    expect((await cli(repo, ["add", "Add a greeting"])).code).toBe(0);

    const run = await cli(repo, ["run"]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("the line did not start (no order was claimed, no attempt used)");
    expect(run.stderr).toContain("nightshift.toml configures no model provider");
    expect(run.stderr).toContain("[providers.anthropic] with ANTHROPIC_API_KEY exported");

    const status = await statusOf(repo);
    expect(status.orders.map((o) => o.status)).toEqual(["queued"]);
    expect(status.runs).toEqual([]);
  });

  it("with the simulator configured, says loudly it is simulated and lands nothing it was not asked for", async () => {
    const repo = await makeRepo(temps, JS_PROJECT);
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);
    git(repo, "checkout", "--quiet", "--detach");
    const mainBefore = git(repo, "rev-parse", "main");
    // The title of one of the demo's orders: the demo's TypeScript patch must not be applied here.
    const added = await cli(repo, [
      "add",
      "Add camelCase(text)",
      "--spec",
      "Add camelCase to index.js (plain JavaScript).",
      "--max-attempts",
      "1",
    ]);
    expect(added.code).toBe(0);

    const run = await cli(repo, ["run"]);
    expect(run.stdout).toContain("SIMULATED MODEL");
    expect(run.stdout).toContain("labelled stand-in that changes nothing");
    expect(run.code).toBe(1);
    expect(git(repo, "rev-parse", "main")).toBe(mainBefore);
    expect(git(repo, "ls-tree", "-r", "--name-only", "main").split("\n").sort()).toEqual([
      "index.js",
      "package.json",
    ]);
    const status = await statusOf(repo);
    expect(status.orders.map((o) => o.status)).toEqual(["failed"]);
  });

  it("refuses the demo's scripted simulator anywhere but the demo repository", async () => {
    const repo = await makeRepo(temps, JS_PROJECT);
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);
    const config = path.join(repo, "nightshift.toml");
    await writeFile(
      config,
      (await readFile(config, "utf8")).replace('policy = "stand-in"', 'policy = "demo"'),
    );
    git(repo, "checkout", "--quiet", "--detach");
    expect((await cli(repo, ["add", "Add camelCase(text)"])).code).toBe(0);

    const run = await cli(repo, ["run"]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`policy = "demo" plays the demo's scripted patches`);
    expect(run.stderr).toContain('policy = "stand-in"');
    const status = await statusOf(repo);
    expect(status.orders.map((o) => o.status)).toEqual(["queued"]);
    expect(status.runs).toEqual([]);
  });
});
