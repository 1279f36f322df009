import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { WorkFinder, type WorkFinderSettings } from "../../src/orders/index.ts";
import { Workspaces } from "../../src/workspace/index.ts";

// The lint and coverage sources of the perpetual loop, with real tools on real repositories:
// TypeScript's tsc, biome, and node's own test runner writing lcov.

const ROOT = path.resolve(import.meta.dirname, "../..");
const TSC = `node ${ROOT}/node_modules/typescript/bin/tsc --noEmit --pretty false --strict`;
const BIOME = `${ROOT}/node_modules/.bin/biome`;

const env = { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" };
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=T", "-c", "user.email=t@example.com", ...args], {
    cwd,
    env,
    encoding: "utf8",
  }).trim();

let repo: string;
let ledger: Ledger;
let clock = 0;

/** Commits on main, then leaves it: the landing branch is not checked out in a person's folder. */
async function commit(files: Record<string, string>) {
  const detached = execFileSync("git", ["status", "--porcelain=v2", "--branch"], {
    cwd: repo,
    env,
  });
  if (String(detached).includes("branch.head (detached)")) git(repo, "switch", "-q", "main");
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(repo, name)), { recursive: true });
    await writeFile(path.join(repo, name), content);
  }
  git(repo, "add", "-A");
  git(repo, "commit", "-qm", "change");
  git(repo, "switch", "-q", "--detach");
}

function finder(settings: Partial<WorkFinderSettings>) {
  const workspaces = new Workspaces({
    repoPath: repo,
    branch: "main",
    rootDir: path.join(repo, ".nightshift", "worktrees"),
  });
  return new WorkFinder(
    {
      ledger,
      repoPath: repo,
      branch: "main",
      logger: pino({ level: process.env.TEST_LOG ?? "silent" }),
      checkouts: { workspaces },
    },
    {
      sources: ["lint"],
      approval: true,
      maxOrdersPerRound: 20,
      intervalMs: 60_000,
      goalsFile: "GOALS.md",
      todoMarkers: ["TODO"],
      ...settings,
    },
    () => clock,
  );
}

const typecheck = (timeoutMs = 120_000) => ({
  commands: [{ name: "types", command: `${TSC} src/*.ts`, format: "tsc" as const }],
  timeoutMs,
});

beforeEach(async () => {
  repo = await mkdtemp(path.join(tmpdir(), "ns-checks-"));
  git(repo, "init", "-q", "-b", "main");
  await commit({
    "src/a.ts":
      'export const a: number = "one";\nexport function f(b: string): number {\n  return b;\n}\n',
    "src/b.ts": "export const b = 2;\n",
    "src/c.ts": 'import { a } from "./a";\nexport const c: string = a;\n',
  });
  ledger = await openLedger({ kind: "memory" });
  clock = 1_000_000;
});
afterEach(async () => {
  await ledger.close();
  await rm(repo, { recursive: true, force: true });
});

describe("the lint source", () => {
  it("turns tsc's type errors into one order per file, scoped to it, quoting the errors, waiting for approval", async () => {
    const added = await finder({ lint: typecheck() }).findWork();
    expect(added.map((o) => [o.source, o.status, o.scope])).toEqual([
      ["lint:types:src/a.ts", "waiting", ["src/a.ts"]],
      ["lint:types:src/c.ts", "waiting", ["src/c.ts"]],
    ]);
    expect(added[0]?.title).toBe("Fix 2 types findings in src/a.ts");
    expect(added[0]?.spec).toContain(
      "src/a.ts:1:14: TS2322: Type 'string' is not assignable to type 'number'.",
    );
    expect(added[0]?.spec).toContain("src/a.ts:3:3: TS2322:");
    expect(added[1]?.title).toBe("Fix 1 types finding in src/c.ts");
    expect(added[0]?.acceptance).toContain(`${TSC} src/*.ts\` reports nothing in src/a.ts`);
    // The checkout it ran in is gone again.
    expect(git(repo, "worktree", "list").split("\n")).toHaveLength(1);
  });

  it("reads biome's JSON, github and concise reports (auto), and caps a round", async () => {
    await commit({
      "src/d.js": "let x = 1;\nif (x == 2) { debugger; }\nexport { x };\n",
      "src/e.js": "if (globalThis.y == 2) { debugger; }\n",
    });
    const lint = {
      commands: [
        { name: "biome", command: `${BIOME} lint --reporter=json src`, format: "auto" as const },
        { name: "gh", command: `${BIOME} lint --reporter=github src`, format: "github" as const },
        // Biome writes its concise report on stderr: the command line says where it goes.
        {
          name: "concise",
          command: `${BIOME} lint --reporter=concise src 2>&1`,
          format: "auto" as const,
        },
      ],
      timeoutMs: 120_000,
    };
    const capped = await finder({ lint, maxOrdersPerRound: 2 }).findWork();
    expect(capped.map((o) => o.source)).toEqual(["lint:biome:src/d.js", "lint:biome:src/e.js"]);
    expect(capped[0]?.spec).toContain("src/d.js:2:7: lint/suspicious/noDoubleEquals:");
    for (const o of capped) await ledger.controls.apply("reject", o.id, "not now");

    clock += 60_000;
    const rest = await finder({ lint }).findWork();
    expect(rest.map((o) => o.source)).toEqual([
      "lint:gh:src/d.js",
      "lint:gh:src/e.js",
      "lint:concise:src/d.js",
      "lint:concise:src/e.js",
    ]);
    expect(rest[0]?.spec).toMatch(/src\/d\.js:2:15: lint\/suspicious\/noDebugger: /);
    expect(rest[2]?.spec).toMatch(/src\/d\.js:2:7: lint\/suspicious\/noDoubleEquals: /);
  });

  it("proposes a finding once across rounds, and a file once while its order is open", async () => {
    const f = finder({ lint: typecheck() });
    expect(await f.findWork()).toHaveLength(2);
    clock += 60_000;
    expect(await f.findWork()).toEqual([]); // the same errors: the same findings

    // src/c.ts gets another error while its order still waits: still that order's work.
    await commit({
      "src/c.ts":
        'import { a } from "./a";\nexport const c: string = a;\nexport const d: boolean = a;\n',
    });
    clock += 60_000;
    expect(await f.findWork()).toEqual([]);
    // Rejected, the changed file is proposed again with what it says now; the same errors moved
    // down a few lines are not.
    const waiting = await ledger.listOrders();
    for (const o of waiting) await ledger.controls.apply("reject", o.id, "later");
    clock += 60_000;
    const again = await f.findWork();
    expect(again.map((o) => o.source)).toEqual(["lint:types:src/c.ts"]);
    expect(again[0]?.title).toBe("Fix 2 types findings in src/c.ts");
    await ledger.controls.apply("reject", again[0]!.id, "later");
    await commit({
      "src/a.ts": `\n\n${'export const a: number = "one";\nexport function f(b: string): number {\n  return b;\n}\n'}`,
    });
    clock += 60_000;
    expect(await f.findWork()).toEqual([]);
  });

  it("queues at once without approval", async () => {
    const added = await finder({ lint: typecheck(), approval: false }).findWork();
    expect(added.map((o) => o.status)).toEqual(["queued", "queued"]);
  });

  it("records a command that cannot run, or runs too long, as a defect once, and goes on with the other sources", async () => {
    await commit({ "GOALS.md": "- Ship it\n" });
    const broken = finder({
      sources: ["lint", "goals"],
      lint: {
        commands: [{ name: "eslint", command: "no-such-linter --format json .", format: "auto" }],
        timeoutMs: 60_000,
      },
    });
    const added = await broken.findWork();
    expect(added.map((o) => o.source)).toEqual(["goals:GOALS.md"]);
    const [defect] = await ledger.listDefects({ status: "open" });
    expect(defect).toMatchObject({ kind: "perpetual_source" });
    expect(defect?.summary).toMatch(
      /^The perpetual source "lint" could not look for work \(source_command_failed\): the "eslint" check `no-such-linter --format json \.` exited 127 without a finding in the format "auto"; it said: .*no-such-linter: command not found/,
    );
    expect(defect?.evidence).toMatchObject({ code: "source_command_failed", source: "lint" });
    clock += 60_000;
    await broken.findWork();
    expect(await ledger.listDefects({ status: "open" })).toHaveLength(1); // not once a round

    const slow = finder({
      lint: { commands: [{ name: "slow", command: "sleep 30", format: "tsc" }], timeoutMs: 300 },
    });
    expect(await slow.findWork()).toEqual([]);
    const defects = await ledger.listDefects({ status: "open" });
    expect(defects.map((d) => d.summary.split(":")[0])).toEqual([
      'The perpetual source "lint" could not look for work (source_command_failed)',
      'The perpetual source "lint" could not look for work (source_command_timed_out)',
    ]);
    expect(defects[1]?.summary).toContain("`sleep 30` did not finish within 0 s and was stopped");
    // Such defects are settings for a person, not work the defects source hands to an agent.
    clock += 60_000;
    expect(await finder({ sources: ["defects"] }).findWork()).toEqual([]);
    expect(git(repo, "worktree", "list").split("\n")).toHaveLength(1);
  });
});

const SUMMARY = (root: string) =>
  JSON.stringify({
    total: { lines: { total: 30, covered: 20, skipped: 0, pct: 66.67 } },
    [`${root}/src/a.ts`]: { lines: { total: 10, covered: 9, pct: 90 } },
    [`${root}/src/b.ts`]: { lines: { total: 10, covered: 2, pct: 20 } },
    [`${root}/src/c.ts`]: { lines: { total: 10, covered: 5, pct: 50 } },
    "/elsewhere/generated.js": { lines: { total: 10, covered: 0, pct: 0 } },
  });

describe("the coverage source", () => {
  const coverage = {
    command:
      "node --test --experimental-test-coverage --test-reporter=lcov --test-reporter-destination=lcov.info test/",
    report: "lcov.info",
    format: "auto" as const,
    metric: "lines" as const,
    threshold: 80,
    timeoutMs: 120_000,
  };

  it("runs node's test coverage in a checkout and proposes the files under the threshold, with the uncovered lines", async () => {
    await commit({
      "package.json": '{ "type": "module" }\n',
      "lib/math.js":
        "export function add(a, b) {\n  return a + b;\n}\nexport function sub(a, b) {\n  if (a > b) return a - b;\n  return b - a;\n}\n",
      "lib/full.js": "export const one = () => 1;\n",
      "test/math.test.js":
        'import { test } from "node:test";\nimport assert from "node:assert";\nimport { add } from "../lib/math.js";\nimport { one } from "../lib/full.js";\ntest("add", () => assert.equal(add(1, 2) + one(), 4));\n',
    });
    const added = await finder({ sources: ["coverage"], coverage }).findWork();
    expect(added.map((o) => [o.source, o.scope, o.status])).toEqual([
      ["coverage:lib/math.js", ["lib/math.js"], "waiting"],
    ]);
    expect(added[0]?.title).toBe("Raise test coverage of lib/math.js: 57.1% of lines, below 80%");
    expect(added[0]?.spec).toContain("measures 57.1% of lines (4 of 7) of lib/math.js covered");
    expect(added[0]?.spec).toContain("Lines no test runs: 5-7.");
    clock += 60_000;
    expect(await finder({ sources: ["coverage"], coverage }).findWork()).toEqual([]);
    expect(git(repo, "worktree", "list").split("\n")).toHaveLength(1);
  });

  it("reads an istanbul summary the command writes, least covered first, only committed files", async () => {
    await commit({
      "make-summary.sh": "mkdir -p coverage\ncat > coverage/coverage-summary.json\n",
    });
    const summary = SUMMARY("$PWD").replaceAll('"', '\\"');
    const added = await finder({
      sources: ["coverage"],
      coverage: {
        ...coverage,
        command: `echo "${summary}" | bash make-summary.sh`,
        report: "coverage/coverage-summary.json",
      },
    }).findWork();
    expect(added.map((o) => o.title)).toEqual([
      "Raise test coverage of src/b.ts: 20.0% of lines, below 80%",
      "Raise test coverage of src/c.ts: 50.0% of lines, below 80%",
    ]);
  });

  it("without a command reads the report in the repository's folder", async () => {
    await mkdir(path.join(repo, "coverage"));
    await writeFile(path.join(repo, "coverage", "coverage-summary.json"), SUMMARY(repo));
    const settings = {
      ...coverage,
      command: "",
      report: "coverage/coverage-summary.json",
      threshold: 30,
    };
    const added = await finder({ sources: ["coverage"], coverage: settings }).findWork();
    expect(added.map((o) => o.source)).toEqual(["coverage:src/b.ts"]);
    expect(added[0]?.acceptance).toContain(
      "the coverage report coverage/coverage-summary.json measures at least 30% of lines of src/b.ts",
    );
  });

  it("records a missing or unreadable report as a defect", async () => {
    const missing = finder({
      sources: ["coverage"],
      coverage: { ...coverage, command: "exit 3" },
    });
    expect(await missing.findWork()).toEqual([]);
    await writeFile(path.join(repo, "lcov.info"), "this is not lcov\n");
    clock += 60_000;
    const unreadable = finder({ sources: ["coverage"], coverage: { ...coverage, command: "" } });
    expect(await unreadable.findWork()).toEqual([]);
    const defects = await ledger.listDefects({ status: "open" });
    expect(defects.map((d) => d.summary)).toEqual([
      expect.stringMatching(
        /\(source_command_failed\): the coverage command `exit 3` exited 3 and wrote no report lcov\.info/,
      ),
      expect.stringMatching(
        /\(coverage_report_unreadable\): cannot read the coverage report lcov\.info: it has no SF: records/,
      ),
    ]);
  });
});
