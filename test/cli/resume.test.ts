import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLedger } from "../../src/ledger/index.ts";
import { makeRepo as makeRepoIn, cli as runCli, TempDirs } from "../support/cli.ts";

const temps = new TempDirs();
const cli = (cwd: string, ...args: string[]) => runCli(cwd, args);

afterAll(() => temps.removeAll());

describe("a paused line from the CLI", () => {
  let repo: string;
  beforeAll(async () => {
    repo = await makeRepoIn(temps);
    expect((await cli(repo, "init", "--provider", "simulator")).code).toBe(0);
  });

  it("status says why the line is paused, and resume resumes it once", async () => {
    const ledger = await openLedger({
      kind: "embedded",
      dataDir: path.join(repo, ".nightshift", "ledger"),
    });
    try {
      await ledger.line.pauseUnlessPaused(
        "circuit breaker (host:1)",
        "5 of the last 10 runs failed for reasons outside their orders",
      );
    } finally {
      await ledger.close();
    }
    const status = await cli(repo, "status");
    expect(status.stdout).toMatch(
      /LINE PAUSED by circuit breaker \(host:1\) since .*`nightshift resume`:\n {2}5 of the last 10 runs failed/,
    );
    const json = JSON.parse((await cli(repo, "status", "--json")).stdout);
    expect(json.lineState.reason).toMatch(/^5 of the last 10 runs/);

    const resumed = await cli(repo, "resume");
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toBe(
      "the line resumes (it was paused by circuit breaker (host:1): 5 of the last 10 runs failed for reasons outside their orders); workers claim runs again\n",
    );
    expect((await cli(repo, "resume")).stdout).toBe("the line is not paused\n");
    expect((await cli(repo, "status")).stdout).not.toMatch(/PAUSED/);
  });
});
