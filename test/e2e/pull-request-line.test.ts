import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openGitHub } from "../../src/github/index.ts";
import { PullRequestOutput } from "../../src/merge/index.ts";
import { demoOrders, demoPolicy } from "../../src/sim/index.ts";
import { startFakeGitHub } from "../support/fake-github.ts";
import { git, makeDemoRepo, startTestLine, testsPassAt } from "../support/line.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe("pull-request output: the line proposes instead of landing", () => {
  it("pushes the gate-passed candidate, opens a pull request, and the order ends proposed with its URL", async () => {
    const repo = await makeDemoRepo();
    cleanups.push(repo.cleanup);
    const remote = path.join(repo.dir, ".nightshift", "remote.git");
    git(repo.dir, "init", "-q", "--bare", "-b", "main", remote);
    git(repo.dir, "remote", "add", "origin", remote);
    const mainBefore = git(repo.dir, "rev-parse", "main");
    const gh = await startFakeGitHub({ token: "t", repo: "acme/textkit", issues: [] });
    cleanups.push(() => gh.close());
    const github = openGitHub(
      { repo: "acme/textkit", baseUrl: gh.url, tokenEnv: "GH_TEST_TOKEN" },
      { GH_TEST_TOKEN: "t" },
    );
    const t = await startTestLine({
      repo: repo.dir,
      policy: demoPolicy({ brokenPatchRate: 0, giveUpRate: 0 }),
      output: new PullRequestOutput(github, { remote: "origin", base: "main" }),
    });
    cleanups.push(() => t.close());
    const demo = demoOrders[0]!;
    const [order] = await t.ledger.addOrders([
      { title: demo.title, spec: demo.spec, acceptance: demo.acceptance },
    ]);

    await t.line.run();

    const after = await t.ledger.getOrder(order!.id);
    expect(after).toMatchObject({
      status: "proposed",
      pull_request_url: "https://github.example/acme/textkit/pull/100",
      landed_commit: null,
    });
    const [run] = await t.ledger.listRuns(order!.id);
    expect(run?.status).toBe("proposed");
    expect(await t.ledger.listMerges()).toEqual([]);
    expect(git(repo.dir, "rev-parse", "main")).toBe(mainBefore);
    expect(gh.pulls).toEqual([
      expect.objectContaining({
        head: `nightshift/wo-${order!.id}`,
        base: "main",
        title: `WO-${order!.id}: ${demo.title}`,
      }),
    ]);
    const proposed = git(remote, "rev-parse", `refs/heads/nightshift/wo-${order!.id}`);
    expect(testsPassAt(repo.dir, proposed)).toBe(true);
    expect(t.progress.at(-1)).toMatchObject({ orderId: order!.id, state: "proposed" });
  });
});
