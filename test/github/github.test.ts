import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { IssuePoller, openGitHub, proposeChange, takeInIssues } from "../../src/github/index.ts";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { type FakeGitHub, type FakeIssue, startFakeGitHub } from "../support/fake-github.ts";

const TOKEN = "ghp_test_token";
const REPO = "acme/shop";
const env = { GH_TOKEN_TEST: TOKEN };

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function fake(issues: FakeIssue[], prefix?: string): Promise<FakeGitHub> {
  const started = await startFakeGitHub({
    token: TOKEN,
    repo: REPO,
    issues,
    ...(prefix ? { prefix } : {}),
  });
  cleanups.push(() => started.close());
  return started;
}

async function ledger(): Promise<Ledger> {
  const l = await openLedger({ kind: "memory" });
  cleanups.push(() => l.close());
  return l;
}

async function failure(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    return error as {
      code: string;
      message: string;
      hint: string;
      details: Record<string, unknown>;
    };
  }
  throw new Error("expected a failure");
}

describe("GitHub intake with the official client (@octokit/rest) against a fake of the REST API", () => {
  it("takes in labelled open issues (every page, no pull requests) once each", async () => {
    const issues: FakeIssue[] = Array.from({ length: 130 }, (_, i) => ({
      number: i + 1,
      title: `Issue ${i + 1}`,
      body: i === 0 ? "Make it faster.\n\n## Acceptance\nP95 under 100 ms.\n\n## Notes\nx" : "",
      labels: i % 2 === 0 ? ["nightshift"] : ["nightshift", "bug"],
    }));
    issues.push({ number: 500, title: "a PR", labels: ["nightshift"], pull_request: true });
    issues.push({ number: 501, title: "not for us", labels: ["question"] });
    const gh = await fake(issues);
    const github = openGitHub({ repo: REPO, baseUrl: gh.url, tokenEnv: "GH_TOKEN_TEST" }, env);
    const l = await ledger();

    const added = await takeInIssues(github, l, { labels: ["nightshift", "bug"], approval: false });
    expect(added).toHaveLength(130);
    expect(added[0]).toMatchObject({
      key: "gh-1",
      title: "Issue 1",
      status: "queued",
      source: "github:acme/shop#1",
      acceptance: "P95 under 100 ms.",
    });
    expect(added[0]?.spec).toContain("https://github.example/acme/shop/issues/1");
    expect(added[1]?.acceptance).toContain("issue #2");
    // Two pages for "nightshift", one for "bug"; the token went as GitHub wants it.
    const listings = gh.requests.filter((r) => r.path.includes("/issues"));
    expect(listings.map((r) => new URL(r.path, "http://x").searchParams.get("page"))).toEqual([
      "1",
      "2",
      "1",
    ]);
    expect(listings.every((r) => r.auth === `token ${TOKEN}`)).toBe(true);

    expect(await takeInIssues(github, l, { labels: ["nightshift"], approval: false })).toEqual([]);
    expect(await l.listOrders()).toHaveLength(130);
  });

  it("works against GitHub Enterprise's /api/v3 root, and waits for approval when asked", async () => {
    const gh = await fake(
      [{ number: 7, title: "Add CSV export", labels: ["nightshift"] }],
      "/api/v3",
    );
    const github = openGitHub({ repo: REPO, baseUrl: gh.url, tokenEnv: "GH_TOKEN_TEST" }, env);
    const added = await takeInIssues(github, await ledger(), {
      labels: ["nightshift"],
      approval: true,
    });
    expect(added.map((o) => [o.key, o.status])).toEqual([["gh-7", "waiting"]]);
    expect(gh.requests[0]?.path).toMatch(/^\/api\/v3\/repos\/acme\/shop\/issues\?/);
  });

  it("says what is wrong: no token, a bad token, an unknown repository, the rate limit", async () => {
    const gh = await fake([{ number: 1, title: "x", labels: ["nightshift"] }]);
    const settings = { repo: REPO, baseUrl: gh.url, tokenEnv: "GH_TOKEN_TEST" };
    const l = await ledger();

    const missing = await failure(Promise.resolve().then(() => openGitHub(settings, {})));
    expect(missing).toMatchObject({
      code: "github_token_missing",
      hint: expect.stringContaining("GH_TOKEN_TEST"),
    });

    const bad = openGitHub(settings, { GH_TOKEN_TEST: "wrong" });
    const unauthorized = await failure(
      takeInIssues(bad, l, { labels: ["nightshift"], approval: false }),
    );
    expect(unauthorized).toMatchObject({
      code: "github_unauthorized",
      message: expect.stringContaining("Bad credentials"),
    });
    expect(unauthorized.details.status).toBe(401);

    const elsewhere = openGitHub({ ...settings, repo: "acme/nope" }, env);
    const notFound = await failure(
      takeInIssues(elsewhere, l, { labels: ["nightshift"], approval: false }),
    );
    expect(notFound).toMatchObject({
      code: "github_not_found",
      message: expect.stringContaining("acme/nope"),
    });

    gh.rateLimitRemaining = 0;
    const limited = await failure(
      takeInIssues(openGitHub(settings, env), l, { labels: ["nightshift"], approval: false }),
    );
    expect(limited.code).toBe("github_rate_limited");
    expect(limited.message).toContain("API rate limit exceeded");
    const resetAt = Date.parse(String(limited.details.resetAt));
    expect(resetAt).toBeGreaterThan(Date.now());
    expect(await l.listOrders()).toEqual([]);
  });
});

describe("the running line's issue poller", () => {
  it("asks once per interval, and not again before a rate limit resets", async () => {
    const gh = await fake([{ number: 1, title: "x", labels: ["nightshift"] }]);
    const l = await ledger();
    let clock = 0;
    const poller = new IssuePoller(
      {
        github: openGitHub({ repo: REPO, baseUrl: gh.url, tokenEnv: "GH_TOKEN_TEST" }, env),
        ledger: l,
        logger: pino({ level: "silent" }),
      },
      { labels: ["nightshift"], approval: false, intervalMs: 60_000 },
      () => clock,
    );
    expect((await poller.poll()).map((o) => o.key)).toEqual(["gh-1"]);
    const asked = gh.requests.length;
    clock = 30_000;
    expect(await poller.poll()).toEqual([]);
    expect(gh.requests).toHaveLength(asked);

    gh.rateLimitRemaining = 0;
    clock = 60_000;
    expect(await poller.poll()).toEqual([]); // refused, logged, the line goes on
    expect(gh.requests).toHaveLength(asked + 1);
    clock = 10 * 60_000; // past the interval, before the reset (an hour after the fake started)
    expect(await poller.poll()).toEqual([]);
    expect(gh.requests).toHaveLength(asked + 1);
  });
});

describe("pull-request output", () => {
  const git = (cwd: string, ...args: string[]) =>
    execFileSync("git", ["-c", "user.name=T", "-c", "user.email=t@example.com", ...args], {
      cwd,
      env: { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" },
      encoding: "utf8",
    }).trim();

  it("pushes the candidate as its own branch and opens a pull request for it", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ns-pr-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const remote = path.join(dir, "remote.git");
    const repo = path.join(dir, "repo");
    git(dir, "init", "-q", "--bare", "-b", "main", remote);
    git(dir, "init", "-q", "-b", "main", repo);
    await writeFile(path.join(repo, "a.txt"), "a\n");
    git(repo, "add", "-A");
    git(repo, "commit", "-qm", "a");
    git(repo, "remote", "add", "origin", remote);
    git(repo, "push", "-q", "origin", "main");
    git(repo, "checkout", "-q", "-b", "candidate");
    await writeFile(path.join(repo, "b.txt"), "b\n");
    git(repo, "add", "-A");
    git(repo, "commit", "-qm", "b");
    const commit = git(repo, "rev-parse", "HEAD");

    const gh = await fake([]);
    const github = openGitHub({ repo: REPO, baseUrl: gh.url, tokenEnv: "GH_TOKEN_TEST" }, env);
    const proposal = {
      repoPath: repo,
      remote: "origin",
      commit,
      branch: "nightshift/wo-3",
      base: "main",
      title: "WO-3: Add b",
      body: "Gates passed: test.",
    };
    const pr = await proposeChange(github, proposal);
    expect(pr).toEqual({ number: 100, url: "https://github.example/acme/shop/pull/100" });
    expect(git(remote, "rev-parse", "refs/heads/nightshift/wo-3")).toBe(commit);
    expect(gh.pulls).toEqual([
      {
        number: 100,
        head: "nightshift/wo-3",
        base: "main",
        title: "WO-3: Add b",
        body: "Gates passed: test.",
      },
    ]);

    // A crash between opening it and recording it: the order's next attempt, with a new
    // candidate, adopts the open pull request (its branch now holds the new candidate).
    await writeFile(path.join(repo, "b.txt"), "b, again\n");
    git(repo, "commit", "-qam", "b again");
    const retried = git(repo, "rev-parse", "HEAD");
    const adopted = await proposeChange(github, { ...proposal, commit: retried });
    expect(adopted).toEqual(pr);
    expect(gh.pulls).toHaveLength(1);
    expect(git(remote, "rev-parse", "refs/heads/nightshift/wo-3")).toBe(retried);
    expect(gh.requests.filter((r) => r.method === "GET").map((r) => r.path)).toEqual([
      "/repos/acme/shop/pulls?state=open&head=acme%3Anightshift%2Fwo-3&base=main&per_page=1",
      "/repos/acme/shop/pulls?state=open&head=acme%3Anightshift%2Fwo-3&base=main&per_page=1",
    ]);
    // A pull request a person closed is not adopted: the next proposal opens a new one.
    gh.pulls[0]!.state = "closed";
    const reopened = await proposeChange(github, { ...proposal, commit: retried });
    expect(reopened).toEqual({ number: 101, url: "https://github.example/acme/shop/pull/101" });
    expect(gh.pulls.map((p) => [p.number, p.state ?? "open"])).toEqual([
      [100, "closed"],
      [101, "open"],
    ]);
    const noRemote = await failure(proposeChange(github, { ...proposal, remote: "nowhere" }));
    expect(noRemote).toMatchObject({
      code: "github_failed",
      hint: expect.stringContaining('"nowhere"'),
    });
    expect(gh.pulls).toHaveLength(2);
  });
});
