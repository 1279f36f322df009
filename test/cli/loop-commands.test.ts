import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli, makeRepo, TempDirs } from "../support/cli.ts";

// econ, report, plan and issues through the real CLI.

const temps = new TempDirs();
afterAll(() => temps.removeAll());

describe("nightshift econ", () => {
  it("answers outside a factory with the bundled prices and a $250k salary", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ns-econ-"));
    try {
      const plain = await cli(dir, ["econ"]);
      expect(plain.code).toBe(0);
      expect(plain.stdout).toContain("claude-opus-5");
      expect(plain.stdout).toMatch(/one every 1[45]\.\d s/);
      expect(plain.stdout).toContain("1.00 × a $250,000 salary");
      const json = JSON.parse(
        (await cli(dir, ["econ", "--json", "--rps", "2", "--salary", "100000"])).stdout,
      ) as {
        answer: { costPerDayUsd: number; costPerRequestUsd: number; engineerEquivalents: number };
      };
      expect(json.answer.costPerDayUsd).toBeCloseTo(2 * 86_400 * json.answer.costPerRequestUsd, 6);
      expect(json.answer.engineerEquivalents).toBeCloseTo(
        (json.answer.costPerDayUsd * 365) / 100_000,
        6,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses bad numbers and unknown models with the fix", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ns-econ-"));
    try {
      const zero = await cli(dir, ["econ", "--rps", "0"]);
      expect(zero.code).toBe(2);
      expect(zero.stderr).toContain("must be a positive number");
      const unknown = await cli(dir, ["econ", "--model", "gpt-nothing"]);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('no price for model "gpt-nothing"');
      expect(unknown.stderr).toContain("fix:");
      const both = await cli(dir, ["econ", "--rps", "1", "--budget-per-day", "5"]);
      expect(both.code).toBe(2);
      expect(both.stderr).toContain("not both");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("report, plan and issues on a factory", () => {
  it("report starts at zero; plan on the stand-in adds nothing; issues asks for [github] repo", async () => {
    const repo = await makeRepo(temps);
    expect((await cli(repo, ["init", "--provider", "simulator"])).code).toBe(0);

    const report = await cli(repo, ["report"]);
    expect(report.code).toBe(0);
    expect(report.stdout).toMatch(/runs\s+0 \(0 ended\)/);
    expect(report.stdout).toMatch(/yield\s+n\/a/);
    const figures = JSON.parse((await cli(repo, ["report", "--json"])).stdout) as {
      landedChanges: number;
      supervisors: number;
    };
    expect(figures).toMatchObject({ landedChanges: 0, supervisors: 1 });

    // The labelled stand-in answers every request with a notice, not a plan.
    const plan = await cli(repo, ["plan", "Add CSV export"]);
    expect(plan.code).toBe(2);
    expect(plan.stderr).toContain("not a usable plan");
    expect(plan.stderr).toContain("nothing was added");
    const noGoal = await cli(repo, ["plan"]);
    expect(noGoal.code).toBe(2);
    expect(noGoal.stderr).toContain("give a goal");
    const status = JSON.parse((await cli(repo, ["status", "--json"])).stdout) as {
      orders: unknown[];
    };
    expect(status.orders).toEqual([]);

    const issues = await cli(repo, ["issues"]);
    expect(issues.code).toBe(2);
    expect(issues.stderr).toContain("[github] repo");
    const config = path.join(repo, "nightshift.toml");
    await writeFile(
      config,
      (await readFile(config, "utf8")).replace('repo = ""', 'repo = "acme/shop"'),
    );
    const noToken = await cli(repo, ["issues", "--label", "nightshift"], {
      env: { GITHUB_TOKEN: "" },
    });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain("GITHUB_TOKEN is not set");
  });
});
