import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeRepo as makeRepoIn, cli as runCli, TempDirs, withRepoLedger } from "../support/cli.ts";

// The real CLI in a child process on a real repository and the embedded ledger; cases share one
// repository and run in order, each spawn costing a second or two.

const temps = new TempDirs();
const cli = (cwd: string, ...args: string[]) => runCli(cwd, args);
const actor = `cli:${os.userInfo().username}`;

afterAll(() => temps.removeAll());

describe("a person's controls from the CLI", () => {
  let repo: string;
  beforeAll(async () => {
    repo = await makeRepoIn(temps);
    expect((await cli(repo, "init", "--provider", "simulator")).code).toBe(0);
    await mkdir(path.join(repo, "..", `${path.basename(repo)}-hidden`), { recursive: true });
  });

  it("add --holdout stores the order's hidden scenarios; --needs-approval keeps it waiting", async () => {
    const hidden = path.join(repo, "..", `${path.basename(repo)}-hidden`);
    await writeFile(path.join(hidden, "slug.test.js"), "// hidden");
    const added = await cli(repo, "add", "Add slug", "--key", "slug", "--holdout", hidden);
    expect(added.stderr).toBe("");
    expect(added.stdout).toBe("queued WO-1: Add slug (1 hidden scenario(s))\n");
    const waiting = await cli(repo, "add", "Drafted order", "--needs-approval");
    expect(waiting.stdout).toBe("waiting for approval WO-2: Drafted order\n");
    const bad = await cli(repo, "add", "Broken", "--holdout", "no/such/folder");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('holdout path "no/such/folder" does not exist');
    await withRepoLedger(repo, async (ledger) => {
      expect((await ledger.listOrders()).map((o) => [o.id, o.status])).toEqual([
        [1, "queued"],
        [2, "waiting"],
      ]);
      expect((await ledger.acceptance.listScenarios(1)).map((s) => [s.name, s.content])).toEqual([
        ["slug.test.js", "// hidden"],
      ]);
    });
  });

  it("approve, cancel (by key) and retry move orders and record who and why", async () => {
    const approved = await cli(repo, "approve", "WO-2", "--note", "checked the spec");
    expect(approved.stderr).toBe("");
    expect(approved.stdout).toContain("WO-2 approved and queued");
    const cancelled = await cli(repo, "cancel", "slug", "-n", "not now");
    expect(cancelled.stdout).toContain("WO-1 cancelled");
    const retried = await cli(repo, "retry", "1");
    expect(retried.stdout).toContain("WO-1 queued again with a fresh set of attempts");
    await withRepoLedger(repo, async (ledger) => {
      const moves = (await ledger.listTransitions())
        .filter((t) => t.message.includes(`by ${actor}`))
        .map((t) => [t.order_id, t.from_status, t.to_status, t.message]);
      expect(moves).toEqual([
        [2, "waiting", "queued", `approve by ${actor}: checked the spec`],
        [1, "queued", "cancelled", `cancel by ${actor}: not now`],
        [1, "cancelled", "queued", `retry by ${actor}`],
      ]);
      // The same controls the console uses, recorded with who used them.
      const controls = (await ledger.controls.history()).reverse();
      expect(controls.map((c) => [c.action, c.order_id, c.actor, c.note])).toEqual([
        ["approve", 2, actor, "checked the spec"],
        ["cancel", 1, actor, "not now"],
        ["retry", 1, actor, ""],
      ]);
    });
  });

  it("refuses a control that does not fit, an unknown order and a bad defect number, with the fix", async () => {
    const notWaiting = await cli(repo, "reject", "WO-1");
    expect(notWaiting.code).toBe(2);
    expect(notWaiting.stderr).toContain(
      "cannot reject WO-1: it is queued; only an order waiting for a person can be rejected",
    );
    expect(notWaiting.stderr).toContain("fix: see `nightshift status`; nothing was changed");
    const unknown = await cli(repo, "retry", "WO-99");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('there is no order "WO-99"');
    const badDefect = await cli(repo, "defect", "close", "seven");
    expect(badDefect.code).toBe(2);
    expect(badDefect.stderr).toContain('"seven" is not a defect number');
    const missing = await cli(repo, "requeue");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'order'");
  });

  it("pause and resume switch the line in the ledger, recorded with who did it", async () => {
    const paused = await cli(repo, "pause", "--note", "deploy freeze");
    expect(paused.stderr).toBe("");
    expect(paused.stdout).toContain("the line is paused");
    await withRepoLedger(repo, async (ledger) => {
      expect(await ledger.line.state()).toMatchObject({
        paused: true,
        changed_by: actor,
        reason: "deploy freeze",
      });
    });
    expect((await cli(repo, "resume")).stdout).toBe(
      `the line resumes (it was paused by ${actor}: deploy freeze); workers claim runs again\n`,
    );
    expect((await cli(repo, "resume")).stdout).toBe("the line is not paused\n");
    await withRepoLedger(repo, async (ledger) => {
      expect((await ledger.line.state()).paused).toBe(false);
      expect((await ledger.controls.history(2)).map((c) => c.action)).toEqual(["resume", "pause"]);
    });
  });

  it("run refuses to serve its console off loopback without a token, and starts nothing", async () => {
    const before = await withRepoLedger(repo, (ledger) => ledger.listOrders());
    const refused = await runCli(repo, ["run", "--console-host", "0.0.0.0"], {
      env: { NIGHTSHIFT_CONSOLE_TOKEN: "" },
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("not a loopback address, and no access token is set");
    expect(refused.stderr).toContain("fix: set NIGHTSHIFT_CONSOLE_TOKEN");
    const short = await runCli(repo, ["run", "--console-token", "short"]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain("shorter than 16 characters");
    await withRepoLedger(repo, async (ledger) => {
      expect(await ledger.listOrders()).toEqual(before);
      expect(await ledger.listRuns()).toEqual([]);
    });
  });

  it("defect close closes an open defect once", async () => {
    await withRepoLedger(repo, (ledger) =>
      ledger.raiseDefect({
        kind: "order_failed",
        orderId: 1,
        summary: "WO-1 failed",
        evidence: {},
      }),
    );
    const closed = await cli(repo, "defect", "close", "D-1", "--note", "flaky, fixed");
    expect(closed.stderr).toBe("");
    expect(closed.stdout).toBe("D-1 closed: WO-1 failed\n");
    const again = await cli(repo, "defect", "close", "1");
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("defect D-1 is already closed");
    await withRepoLedger(repo, async (ledger) => {
      const [defect] = await ledger.listDefects();
      expect([defect?.status, defect?.close_note]).toEqual(["closed", "flaky, fixed"]);
    });
  });
});
