import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FEEDBACK_HEADING } from "../../src/agents/index.ts";
import {
  createHoldoutGate,
  createTestGate,
  type HoldoutScenarioSource,
} from "../../src/gates/index.ts";
import { ledgerScenarios } from "../../src/line/index.ts";
import type { ChatRequest } from "../../src/protocols/index.ts";
import { BubblewrapBackend } from "../../src/sandbox/index.ts";
import { conversationTurn, messagesText, type Policy } from "../../src/sim/index.ts";
import { git, landedOrderTrailers, startTestLine } from "../support/line.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

const TEST_COMMAND = "node --test --test-reporter=tap test/*.test.js";

const visibleTest = (module: string, name: string, call: string, expected: string) =>
  [
    'const { test } = require("node:test");',
    'const assert = require("node:assert/strict");',
    `const { ${module} } = require("../src/${module}.js");`,
    `test(${JSON.stringify(name)}, () => assert.equal(${call}, ${JSON.stringify(expected)}));`,
    "",
  ].join("\n");

/** Hidden scenarios: a distinctive call each, so the test can prove their source never leaks. */
const HIDDEN_SLUG_CALL = 'slug("  Hello   World ")';
const hidden = (module: string, name: string, call: string, expected: string) =>
  [
    'const { test } = require("node:test");',
    'const assert = require("node:assert/strict");',
    `const { ${module} } = require("../src/${module}.js");`,
    `test(${JSON.stringify(name)}, () => {`,
    `  const result = ${call};`,
    `  assert.equal(result, ${JSON.stringify(expected)});`,
    "});",
    "",
  ].join("\n");

const SLUG_NAIVE = 'exports.slug = (text) => text.toLowerCase().replace(/ /g, "-");\n';
const SLUG_RIGHT =
  'exports.slug = (text) => text.trim().toLowerCase().split(/\\s+/).filter(Boolean).join("-");\n';

/** What the scripted model writes for each order: its first attempt, and its retry. */
const PATCHES: Record<string, { first: Record<string, string>; retry: Record<string, string> }> = {
  "Add slug(text)": {
    // Passes the visible test, misses the intent (runs of spaces, edges): only the hidden
    // scenario can tell.
    first: {
      "src/slug.js": SLUG_NAIVE,
      "test/slug.test.js": visibleTest(
        "slug",
        "slug joins words",
        'slug("Hello World")',
        "hello-world",
      ),
    },
    retry: {
      "src/slug.js": SLUG_RIGHT,
      "test/slug.test.js": visibleTest(
        "slug",
        "slug joins words",
        'slug("Hello World")',
        "hello-world",
      ),
    },
  },
  "Add shout(text)": {
    first: {
      "src/shout.js": 'exports.shout = (text) => text.toUpperCase() + "!";\n',
      "test/shout.test.js": visibleTest("shout", "shout raises", 'shout("hi")', "HI!"),
    },
    retry: {},
  },
  "Add initials(text)": {
    // A careless "simplification" of slug on the side: the visible tests still pass, but the
    // landed order's hidden scenario catches it.
    first: {
      "src/initials.js":
        'exports.initials = (text) => text.split(" ").map((w) => w[0]).join("");\n',
      "test/initials.test.js": visibleTest(
        "initials",
        "initials of two words",
        'initials("Ada Lovelace")',
        "AL",
      ),
      "src/slug.js": SLUG_NAIVE,
    },
    retry: {
      "src/initials.js":
        'exports.initials = (text) => text.split(" ").map((w) => w[0]).join("");\n',
      "test/initials.test.js": visibleTest(
        "initials",
        "initials of two words",
        'initials("Ada Lovelace")',
        "AL",
      ),
    },
  },
};

function scriptedModel(requests: ChatRequest[]): Policy {
  return (request) => {
    requests.push(request);
    const text = messagesText(request, ["user"]);
    const title = Object.keys(PATCHES).find((t) => text.includes(t));
    if (!title) return { content: "no such order" };
    if (conversationTurn(request) > 0) return { content: `Done: ${title}.` };
    const patch = PATCHES[title]!;
    const files = text.includes(FEEDBACK_HEADING) ? patch.retry : patch.first;
    return {
      toolCalls: Object.entries(files).map(([p, content]) => ({
        name: "write_file",
        arguments: { path: p, content },
      })),
    };
  };
}

async function makeRepo(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-holdout-e2e-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, "src"));
  await mkdir(path.join(dir, "test"));
  await writeFile(path.join(dir, "package.json"), '{ "name": "strkit", "private": true }\n');
  await writeFile(path.join(dir, "src", "upper.js"), "exports.upper = (t) => t.toUpperCase();\n");
  await writeFile(
    path.join(dir, "test", "upper.test.js"),
    visibleTest("upper", "upper", 'upper("a")', "A"),
  );
  const run = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t.invalid", ...args], {
      cwd: dir,
    });
  run("init", "--quiet", "-b", "main");
  run("add", "-A");
  run("commit", "--quiet", "-m", "strkit");
  run("checkout", "--quiet", "--detach");
  return dir;
}

describe("hidden acceptance per order, end to end (built-in agent, scripted model, real gates)", () => {
  it("a patch that passes the visible tests but fails its order's hidden scenario never lands; the retry learns the scenario's name and observation, not its source; landed orders' scenarios guard later candidates", async () => {
    const repo = await makeRepo();
    const holdoutDir = await mkdtemp(path.join(os.tmpdir(), "nightshift-holdout-dir-"));
    cleanups.push(() => rm(holdoutDir, { recursive: true, force: true }));
    // WO-2's scenario comes from a folder named by its key, the others' from the ledger.
    await mkdir(path.join(holdoutDir, "orders", "shout"), { recursive: true });
    await writeFile(
      path.join(holdoutDir, "orders", "shout", "shout-empty.test.js"),
      hidden("shout", "shout of nothing is just the mark", 'shout("")', "!"),
    );
    const sandbox = new BubblewrapBackend();
    let source: HoldoutScenarioSource | undefined;
    const gates = [
      createTestGate({ command: TEST_COMMAND, timeoutMs: 120_000, sandbox }),
      createHoldoutGate({
        dir: holdoutDir,
        command: "node --test --test-reporter=tap {file}",
        timeoutMs: 120_000,
        sandbox,
        scenarios: (orderId) => source!(orderId),
      }),
    ];
    const requests: ChatRequest[] = [];
    const t = await startTestLine({
      repo,
      policy: scriptedModel(requests),
      gates,
      sandbox,
      settings: { concurrency: 1, testCommand: TEST_COMMAND },
    });
    cleanups.push(t.close);
    source = ledgerScenarios(t.ledger, holdoutDir);
    const [slug, shout, initials] = await t.ledger.addOrders([
      {
        title: "Add slug(text)",
        spec: "slug(text) turns text into a URL slug.",
        priority: 3,
        holdout: [
          {
            name: "slug-spaces.test.js",
            content: hidden(
              "slug",
              "slug collapses runs of spaces and trims",
              HIDDEN_SLUG_CALL,
              "hello-world",
            ),
          },
        ],
      },
      {
        title: "Add shout(text)",
        spec: "shout(text) upper-cases and adds !",
        key: "shout",
        priority: 2,
      },
      {
        title: "Add initials(text)",
        spec: "initials(text): the first letter of each word.",
        acceptance: "initials of two words are two letters",
        priority: 1,
        holdout: [
          {
            name: "initials.test.js",
            content: hidden(
              "initials",
              "initials of three words",
              'initials("Grace Brewster Hopper")',
              "GBH",
            ),
          },
        ],
      },
    ]);

    await t.line.run();

    expect(t.line.haltedBecause).toBeUndefined();
    const orders = await t.ledger.listOrders();
    expect(orders.map((o) => [o.id, o.status, o.attempts])).toEqual([
      [slug!.id, "landed", 2],
      [shout!.id, "landed", 1],
      [initials!.id, "landed", 2],
    ]);
    expect(landedOrderTrailers(repo)).toEqual([
      `WO-${slug!.id}`,
      `WO-${shout!.id}`,
      `WO-${initials!.id}`,
    ]);
    expect(git(repo, "show", "main:src/slug.js")).toBe(SLUG_RIGHT.trim());

    // WO-1's first candidate passed the visible tests and failed only its hidden scenario.
    const [slugFirst] = await t.ledger.listRuns(slug!.id);
    const slugGates = await t.ledger.listGateResults(slugFirst!.id);
    expect(slugGates.map((g) => [g.gate, g.passed])).toEqual([
      ["test", true],
      ["holdout", false],
    ]);

    // Its retry was told which scenario failed and what it saw, never the scenario's source.
    const prompts = requests.map((r) => messagesText(r, ["user"]));
    const slugRetry = prompts.find(
      (p) => p.includes("Add slug(text)") && p.includes(FEEDBACK_HEADING),
    );
    expect(slugRetry).toContain(
      `scenario slug-spaces.test.js (WO-${slug!.id}, this order's acceptance)`,
    );
    expect(slugRetry).toContain('check "slug collapses runs of spaces and trims" failed');
    expect(slugRetry).toContain("expected: hello-world");
    expect(slugRetry).toContain("observed: --hello---world-");
    expect(slugRetry).toContain("This order states no acceptance criteria");
    for (const prompt of prompts) {
      expect(prompt).not.toContain(HIDDEN_SLUG_CALL);
      expect(prompt).not.toContain("assert.equal(result");
    }

    // WO-3's first candidate undid part of WO-1: the landed order's scenario turned it back.
    const [initialsFirst, initialsSecond] = await t.ledger.listRuns(initials!.id);
    const turnedBack = (await t.ledger.listGateResults(initialsFirst!.id)).find((g) => !g.passed);
    expect(turnedBack?.gate).toBe("holdout");
    expect(turnedBack?.output).toContain(
      `scenario slug-spaces.test.js (WO-${slug!.id}, a landed order's acceptance)`,
    );
    expect(turnedBack?.output).not.toContain("initials.test.js");
    // ... and the landed orders' scenarios ran on the fixed candidate too, with its own.
    const passedHoldout = (await t.ledger.listGateResults(initialsSecond!.id)).find(
      (g) => g.gate === "holdout" && g.stage === "candidate",
    );
    expect(passedHoldout?.output).toBe("holdout: all 3 scenario run(s) passed");

    // Main itself was checked before the start, is known to pass after each landing, and was
    // checked for real when WO-3's candidate failed on it (it passed: the fault was WO-3's).
    const checks = await t.ledger.db
      .selectFrom("baseline_checks")
      .selectAll()
      .orderBy("id")
      .execute();
    const landed = new Map(orders.map((o) => [o.id, o.landed_commit]));
    expect(checks.map((c) => [c.commit_sha, c.passed])).toEqual([
      [git(repo, "rev-list", "--max-parents=0", "main"), true],
      [landed.get(slug!.id), true],
      [landed.get(shout!.id), true],
      [landed.get(shout!.id), true],
      [landed.get(initials!.id), true],
    ]);
  });
});
