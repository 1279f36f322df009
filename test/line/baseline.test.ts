import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { collectStatus, renderStatus } from "../../src/cli/commands/status.ts";
import type { ChatRequest } from "../../src/protocols/index.ts";
import { demoOrders, demoPolicy, type Policy, resolveTsxLoader } from "../../src/sim/index.ts";
import { git, mainHistory, makeDemoRepo, startTestLine } from "../support/line.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

function recording(policy: Policy, requests: ChatRequest[]): Policy {
  return (request, ctx) => {
    requests.push(request);
    return policy(request, ctx);
  };
}

describe("the line's check of main itself", () => {
  it("pauses before any agent run when the test command cannot start: no attempt used, nothing charged, status says why", async () => {
    const repo = await makeDemoRepo();
    cleanups.push(repo.cleanup);
    // The test command loads a module main does not have: it cannot start, on main or on any
    // candidate, whatever the agent writes.
    const loader = "./setup/loader.mjs";
    const requests: ChatRequest[] = [];
    const tsx = pathToFileURL(resolveTsxLoader()).href;
    const settings = {
      testCommand: `node --import ${tsx} --import ${loader} --test test/*.test.ts`,
    };
    const t = await startTestLine({
      repo: repo.dir,
      policy: recording(demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }), requests),
      settings,
    });
    cleanups.push(t.close);
    await t.ledger.addOrders(
      demoOrders
        .slice(0, 3)
        .map((o) => ({ title: o.title, spec: o.spec, acceptance: o.acceptance })),
    );
    const before = mainHistory(repo.dir);

    await t.line.run();

    expect(t.line.haltedBecause).toMatch(
      /the test gate failed \(exit 1\) on main [0-9a-f]{10} itself/,
    );
    expect(t.line.haltedBecause).toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND/);
    expect(t.line.haltedBecause).toContain("no order is charged");
    expect(requests).toEqual([]);
    expect(await t.ledger.listRuns()).toEqual([]);
    expect(await t.ledger.metering.listModelRequests()).toEqual([]);
    expect(await t.ledger.listDefects()).toEqual([]);
    const orders = await t.ledger.listOrders();
    expect(orders.map((o) => [o.status, o.attempts])).toEqual([
      ["queued", 0],
      ["queued", 0],
      ["queued", 0],
    ]);
    expect(mainHistory(repo.dir)).toEqual(before);

    const status = await collectStatus(t.ledger);
    expect(status.paused?.commit).toBe(before.at(-1));
    expect(status.paused?.cause).toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND/);
    const text = renderStatus(status, "demo", repo.dir, { driver: "builtin", model: "sim-demo" });
    expect(text).toContain(
      `LINE PAUSED: main ${before.at(-1)?.slice(0, 10)} itself fails the gates`,
    );

    // A person adds what was missing to main; the next start checks the new main and works.
    const fixing = path.join(repo.dir, ".nightshift", "fixing");
    git(repo.dir, "worktree", "add", "--quiet", fixing, "main");
    await mkdir(path.join(fixing, "setup"));
    await writeFile(path.join(fixing, "setup", "loader.mjs"), "export {};\n");
    git(fixing, "add", "setup");
    git(fixing, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "loader");
    git(repo.dir, "worktree", "remove", fixing);
    const repaired = mainHistory(repo.dir).at(-1);
    const fixed = await startTestLine({
      repo: repo.dir,
      policy: demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }),
      settings,
    });
    cleanups.push(fixed.close);
    await fixed.ledger.addOrders([{ title: demoOrders[0]!.title, spec: demoOrders[0]!.spec }]);
    await fixed.line.run();
    expect(fixed.line.haltedBecause).toBeUndefined();
    expect((await fixed.ledger.listOrders()).map((o) => [o.status, o.attempts])).toEqual([
      ["landed", 1],
    ]);
    // Checked before the start and again after the landing, on the new main.
    const checks = await fixed.ledger.db
      .selectFrom("baseline_checks")
      .selectAll()
      .orderBy("id")
      .execute();
    expect(checks.map((c) => [c.commit_sha, c.passed])).toEqual([
      [repaired, true],
      [mainHistory(repo.dir).at(-1), true],
    ]);
    expect((await collectStatus(fixed.ledger)).paused).toBeUndefined();
  });
});
