import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeRepo as makeRepoIn, cli as runCli, TempDirs, withRepoLedger } from "../support/cli.ts";

// The real CLI in a child process on a real repository and the embedded ledger; the cases share
// one repository and run in order. The commands call the same ledger controls as the console's API.

const temps = new TempDirs();
const cli = (cwd: string, ...args: string[]) => runCli(cwd, args);
const actor = `cli:${os.userInfo().username}`;

afterAll(() => temps.removeAll());

describe("stop, priority and budget controls from the CLI", () => {
  let repo: string;
  beforeAll(async () => {
    repo = await makeRepoIn(temps);
    expect((await cli(repo, "init", "--provider", "simulator")).code).toBe(0);
    // A daily limit in nightshift.toml, for the override to go over.
    const toml = path.join(repo, "nightshift.toml");
    const text = await readFile(toml, "utf8");
    await writeFile(toml, text.replace(/^\[budget\]$/m, "[budget]\nmax_usd_per_day = 5.0"));
    expect((await cli(repo, "add", "First", "--key", "first")).code).toBe(0);
    expect((await cli(repo, "add", "Second")).code).toBe(0);
  });

  it("budget shows each limit, where it is set and the spend against it", async () => {
    const shown = await cli(repo, "budget");
    expect(shown.stderr).toBe("");
    expect(shown.stdout).toMatch(
      /^max_tokens_per_run\s+500000 tokens\s+nothing running\s+nightshift.toml$/m,
    );
    expect(shown.stdout).toMatch(
      /^max_usd_per_day\s+\$5\.00\s+\$0\.00 today \(UTC\) \(0%\)\s+nightshift.toml$/m,
    );
    expect(shown.stdout).toMatch(/^max_usd_total\s+unlimited\s+\$0\.00 in total\s+not set$/m);
    const json = JSON.parse((await cli(repo, "budget", "--json")).stdout);
    expect(json.limits.map((l: { name: string }) => l.name)).toEqual([
      "max_tokens_per_run",
      "max_usd_per_run",
      "max_usd_per_order",
      "max_usd_per_day",
      "max_usd_total",
    ]);
  });

  it("budget set overrides a limit and budget clear goes back to nightshift.toml, recorded with who", async () => {
    const set = await cli(repo, "budget", "set", "max_usd_per_day", "1.25", "-n", "quiet night");
    expect(set.stderr).toBe("");
    expect(set.stdout).toBe(
      "max_usd_per_day = $1.25 (override; nightshift.toml: $5.00); the gateways apply it to their next request, no restart needed\n",
    );
    expect((await cli(repo, "budget")).stdout).toMatch(
      new RegExp(
        `^max_usd_per_day\\s+\\$1\\.25\\s+.*override by ${actor} at .*\\(nightshift.toml: \\$5\\.00\\)$`,
        "m",
      ),
    );
    expect((await cli(repo, "budget", "set", "max_tokens_per_run", "200_000")).code).toBe(0);
    const cleared = await cli(repo, "budget", "clear", "max_usd_per_day");
    expect(cleared.stdout).toBe(
      "max_usd_per_day: override cleared; nightshift.toml's $5.00 applies again\n",
    );
    await withRepoLedger(repo, async (ledger) => {
      const { overrides } = await ledger.budgetLimits.overrides();
      expect(overrides).toEqual({
        max_tokens_per_run: { value: 200_000, setBy: actor, setAt: expect.any(Date) },
      });
      const controls = (await ledger.controls.history()).reverse();
      expect(controls.map((c) => [c.action, c.actor, c.note, c.details])).toEqual([
        ["budget-limit", actor, "quiet night", { limit: "max_usd_per_day", from: null, to: 1.25 }],
        ["budget-limit", actor, "", { limit: "max_tokens_per_run", from: null, to: 200_000 }],
        [
          "budget-limit",
          actor,
          "",
          { limit: "max_usd_per_day", from: 1.25, to: null, cleared: true },
        ],
      ]);
    });
  });

  it("refuses bad budget arguments with what to give, changing nothing", async () => {
    const cases: [string[], string][] = [
      [["budget", "set", "max_usd_per_week", "1"], 'there is no budget limit "max_usd_per_week"'],
      [["budget", "set", "max_usd_per_day", "five"], 'max_usd_per_day = "five" is not a number'],
      [["budget", "set", "max_usd_per_day", "-1"], "max_usd_per_day = -1 is negative"],
      [
        ["budget", "set", "max_tokens_per_run", "1.5"],
        "max_tokens_per_run = 1.5 is not a whole number",
      ],
      [["budget", "clear", "max_usd_total"], "max_usd_total has no override to clear"],
      [["budget", "clear", "total"], 'there is no budget limit "total"'],
      [["budget", "order", "WO-1", "lots"], '"lots" is not a token budget'],
      [["budget", "order", "WO-1", "0"], '"0" is not a token budget'],
      [["budget", "set", "max_usd_per_day"], "missing required argument 'value'"],
      [["budget", "sett", "max_usd_per_day", "1"], "too many arguments for 'budget'"],
    ];
    for (const [args, message] of cases) {
      const result = await cli(repo, ...args);
      expect([args, result.code]).toEqual([args, 2]);
      expect(result.stderr).toContain(message);
    }
    await withRepoLedger(repo, async (ledger) => {
      expect((await ledger.controls.history()).length).toBe(3);
    });
  });

  it("priority and budget order change an order, recorded with who", async () => {
    const raised = await cli(repo, "priority", "first", "7", "-n", "customer waiting");
    expect(raised.stderr).toBe("");
    expect(raised.stdout).toBe("WO-1 priority 0 -> 7 (higher runs first): First\n");
    expect((await cli(repo, "priority", "WO-2", "-3")).stdout).toContain("priority 0 -> -3");
    expect((await cli(repo, "budget", "order", "2", "150000")).stdout).toBe(
      "WO-2 token budget per run the factory's -> 150000 tokens: Second\n",
    );
    expect((await cli(repo, "budget", "order", "2", "default")).stdout).toBe(
      "WO-2 token budget per run 150000 tokens -> the factory's: Second\n",
    );
    for (const [args, message] of [
      [["priority", "WO-1", "high"], 'priority "high" is not a whole number from -1000 to 1000'],
      [["priority", "WO-1", "5000"], 'priority "5000" is not a whole number'],
      [["priority", "WO-9", "1"], 'there is no order "WO-9"'],
    ] as const) {
      const result = await cli(repo, ...args);
      expect([args, result.code]).toEqual([args, 2]);
      expect(result.stderr).toContain(message);
    }
    await withRepoLedger(repo, async (ledger) => {
      expect((await ledger.getOrder(1))?.priority).toBe(7);
      expect(await ledger.getOrder(2)).toMatchObject({ priority: -3, budget_tokens: null });
      const controls = (await ledger.controls.history(4)).reverse();
      expect(controls.map((c) => [c.action, c.order_id, c.actor, c.details])).toEqual([
        ["priority", 1, actor, { priority: [0, 7] }],
        ["priority", 2, actor, { priority: [0, -3] }],
        ["budget", 2, actor, { budgetTokens: [null, 150000] }],
        ["budget", 2, actor, { budgetTokens: [150000, null] }],
      ]);
    });
  });

  it("stop ends a running run and leaves its order waiting for a person", async () => {
    const runId = await withRepoLedger(repo, async (ledger) => {
      const claim = await ledger.claimNext({
        workerId: "w",
        leaseMs: 600_000,
        agent: "t",
        model: "m",
      });
      return claim!.run.id;
    });
    const stopped = await cli(repo, "stop", `run-${runId}`, "-n", "looping");
    expect(stopped.stderr).toBe("");
    expect(stopped.stdout).toBe(
      `run ${runId} stopped; WO-1 waits for a person: \`nightshift approve WO-1\` queues it again, \`nightshift reject WO-1\` cancels it\n`,
    );
    const again = await cli(repo, "stop", String(runId));
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`cannot stop run ${runId}: it is abandoned`);
    const bad = await cli(repo, "stop", "latest");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"latest" is not a run number');
    expect((await cli(repo, "stop", "999")).stderr).toContain("there is no run 999");
    await withRepoLedger(repo, async (ledger) => {
      expect(await ledger.getRun(runId)).toMatchObject({ status: "abandoned" });
      expect((await ledger.getOrder(1))?.status).toBe("waiting");
      const [last] = await ledger.controls.history(1);
      expect(last).toMatchObject({
        action: "stop",
        run_id: runId,
        order_id: 1,
        actor,
        note: "looping",
      });
    });
  });
});
