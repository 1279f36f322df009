import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { describeError, isNightshiftError, type NightshiftError } from "../../src/errors/index.ts";
import { cli, git, makeRepo, TempDirs } from "../support/cli.ts";

const temps = new TempDirs();
afterAll(() => temps.removeAll());

describe("nightshift demo's folder", () => {
  it("is the one -C/--dir names after `demo` (it used to go to a temp folder)", async () => {
    const repo = path.join(await temps.make("nightshift-demo-dir-"), "sample");
    const result = await cli(await temps.make("nightshift-cwd-"), [
      "demo",
      "--dir",
      repo,
      "--orders",
      "1",
      "--broken-rate",
      "0",
      "--give-up-rate",
      "0",
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`sample repository: ${repo} `);
    expect(existsSync(path.join(repo, "nightshift.toml"))).toBe(true);
    expect(git(repo, "log", "--oneline", "main").split("\n")).toHaveLength(2);
  });

  it("is the one --repo names, as the README says, and must be new or empty", async () => {
    const full = await temps.make("nightshift-demo-full-");
    await writeFile(path.join(full, "keep.txt"), "mine\n");
    const result = await cli(full, ["demo", "--repo", full]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${full} holds 1 entry`);
    expect(result.stderr).toContain("fix: name a folder that does not exist yet");
    expect(existsSync(path.join(full, "nightshift.toml"))).toBe(false);
    expect(existsSync(path.join(full, ".git"))).toBe(false);
  });
});

describe("nightshift run in a repository with no commits", () => {
  it("names the cause (no commits yet) and a fix that works, not `git switch --detach`", async () => {
    const repo = await temps.make("nightshift-unborn-");
    git(repo, "init", "--quiet", "-b", "main");
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);
    expect((await cli(repo, ["add", "an order"])).code).toBe(0);
    const result = await cli(repo, ["run"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('branch "main" has no commits yet');
    expect(result.stderr).toContain(
      'fix: make a first commit (e.g. `git commit --allow-empty -m "initial commit"`), then `git switch --detach`',
    );
    expect(result.stderr).not.toContain("is checked out");
  });
});

describe("a sandbox error's hint", () => {
  it("reaches the CLI's stderr", async () => {
    const repo = await makeRepo(temps);
    git(repo, "checkout", "--quiet", "--detach");
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);
    const config = path.join(repo, "nightshift.toml");
    const text = await readFile(config, "utf8");
    expect(text).toContain('backend = "bubblewrap"');
    await writeFile(config, text.replace('backend = "bubblewrap"', 'backend = "container"'));
    expect((await cli(repo, ["add", "an order"])).code).toBe(0);
    // No podman or docker on PATH: the container backend's SandboxError (backend_missing).
    const bin = await temps.make("nightshift-path-");
    await mkdir(bin, { recursive: true });
    const result = await cli(repo, ["run"], {
      env: { PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin` },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/container/);
    expect(result.stderr).toMatch(/\n {2}fix: \S/);
  });
});

describe("every error class nightshift raises on purpose", () => {
  it("is a NightshiftError, so the CLI prints its code's message and its hint", async () => {
    const { SandboxError } = await import("../../src/sandbox/index.ts");
    const { ProtocolError } = await import("../../src/protocols/index.ts");
    const { QueueCoreError } = await import("../../src/merge/index.ts");
    const { SimulatorError, ScenarioError, DemoPolicyError } = await import(
      "../../src/sim/index.ts"
    );
    const { UpstreamError } = await import("../../src/gateway/index.ts");
    const { ToolError } = await import("../../src/agents/index.ts");
    const errors: [NightshiftError, string][] = [
      [new SandboxError("backend_missing", "no bwrap", "install bubblewrap"), "backend_missing"],
      [new ProtocolError("invalid_request", "bad body", "messages"), "invalid_request"],
      [new QueueCoreError("depth must be a positive integer"), "invalid_queue_options"],
      [new SimulatorError("no_order", "unknown order", 400), "no_order"],
      [new ScenarioError("step 1: no reply"), "invalid_scenario"],
      [new DemoPolicyError("giveUpRate must be between 0 and 1"), "invalid_demo_policy_options"],
      [new UpstreamError("no answer", 3), "upstream_unreachable"],
      [new ToolError("old_string not found"), "tool_error"],
    ];
    for (const [error, code] of errors) {
      expect(isNightshiftError(error), error.name).toBe(true);
      expect(error.code).toBe(code);
      const hint = error.hint;
      expect(describeError(error)).toBe(hint ? `${error.message}\n  fix: ${hint}` : error.message);
    }
    const sandbox = errors[0]![0] as InstanceType<typeof SandboxError>;
    expect(sandbox.message).toBe("no bwrap");
    expect(describeError(sandbox)).toBe("no bwrap\n  fix: install bubblewrap");
  });
});
