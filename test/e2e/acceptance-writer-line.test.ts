import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FEEDBACK_HEADING } from "../../src/agents/index.ts";
import { isNightshiftError } from "../../src/errors/index.ts";
import {
  ACCEPTANCE_WRITER_MARKER,
  createHoldoutGate,
  createTestGate,
  type HoldoutScenarioSource,
} from "../../src/gates/index.ts";
import { draftOrderAcceptance, ledgerScenarios } from "../../src/line/index.ts";
import type { ChatRequest } from "../../src/protocols/index.ts";
import { conversationTurn, messagesText, type Policy } from "../../src/sim/index.ts";
import { startTestLine } from "../support/line.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

const TEST_COMMAND = "node --test --test-reporter=tap test/*.test.js";
const HOLDOUT_COMMAND = "node --test --test-reporter=tap {file}";
const TITLE = "Add initials(text)";

/** What the writer drafts: a distinctive call, so the test can prove it never reaches the agent. */
const HIDDEN_CALL = 'initials("grace brewster hopper")';
const DRAFT = [
  'const { test } = require("node:test");',
  'const assert = require("node:assert/strict");',
  'const { initials } = require("../src/initials.js");',
  'test("initials are upper-case letters, one per word", () => {',
  `  const got = ${HIDDEN_CALL};`,
  '  assert.equal(got, "GBH");',
  "});",
  "",
].join("\n");

const visible = [
  'const { test } = require("node:test");',
  'const assert = require("node:assert/strict");',
  'const { initials } = require("../src/initials.js");',
  'test("initials of two words", () => assert.equal(initials("Ada Lovelace"), "AL"));',
  "",
].join("\n");
const NAIVE = 'exports.initials = (t) => t.split(" ").map((w) => w[0]).join("");\n';
const RIGHT =
  'exports.initials = (t) => t.split(/\\s+/).map((w) => w[0].toUpperCase()).join("");\n';

/** The writer's requests get `writer`; the agent writes a naive patch, then the right one. */
function model(
  writer: () => string,
  agentPrompts: string[],
  writerRequests: ChatRequest[],
): Policy {
  return (request) => {
    if (messagesText(request, ["system"]).includes(ACCEPTANCE_WRITER_MARKER)) {
      writerRequests.push(request);
      return { content: writer() };
    }
    const text = messagesText(request, ["system", "user", "tool"]);
    agentPrompts.push(text);
    if (conversationTurn(request) > 0) return { content: `Done: ${TITLE}.` };
    const retry = text.includes(FEEDBACK_HEADING);
    return {
      toolCalls: [
        {
          name: "write_file",
          arguments: { path: "src/initials.js", content: retry ? RIGHT : NAIVE },
        },
        { name: "write_file", arguments: { path: "test/initials.test.js", content: visible } },
      ],
    };
  };
}

async function makeRepo(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-writer-e2e-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, "src"));
  await mkdir(path.join(dir, "test"));
  await writeFile(
    path.join(dir, "package.json"),
    '{ "name": "strkit", "private": true, "scripts": { "test": "node --test" } }\n',
  );
  await writeFile(path.join(dir, "src", "upper.js"), "exports.upper = (t) => t.toUpperCase();\n");
  await writeFile(
    path.join(dir, "test", "upper.test.js"),
    'const { test } = require("node:test");\nconst assert = require("node:assert/strict");\nconst { upper } = require("../src/upper.js");\ntest("upper", () => assert.equal(upper("a"), "A"));\n',
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

async function setUp(writer: () => string) {
  const repo = await makeRepo();
  const holdoutDir = await mkdtemp(path.join(os.tmpdir(), "nightshift-writer-holdout-"));
  cleanups.push(() => rm(holdoutDir, { recursive: true, force: true }));
  let source: HoldoutScenarioSource | undefined;
  const gates = [
    createTestGate({ command: TEST_COMMAND, timeoutMs: 120_000 }),
    createHoldoutGate({
      dir: holdoutDir,
      command: HOLDOUT_COMMAND,
      timeoutMs: 120_000,
      scenarios: (orderId) => source!(orderId),
    }),
  ];
  const agentPrompts: string[] = [];
  const writerRequests: ChatRequest[] = [];
  const t = await startTestLine({
    repo,
    policy: model(writer, agentPrompts, writerRequests),
    gates,
    sandbox: "unsandboxed",
    settings: { concurrency: 1, testCommand: TEST_COMMAND },
  });
  cleanups.push(t.close);
  source = ledgerScenarios(t.ledger, holdoutDir);
  const parts = {
    ledger: t.ledger,
    models: t.gateway,
    repoPath: repo,
    branch: "main",
    holdoutDir,
    command: HOLDOUT_COMMAND,
    target: ".holdout",
  };
  const [order] = await t.ledger.addOrders([
    {
      title: TITLE,
      spec: "initials(text): the first letter of each word.",
      acceptance: "initials are upper-case, one letter per word, whatever the input's case",
    },
  ]);
  return { t, parts, order: order!, agentPrompts, writerRequests };
}

describe("the acceptance writer drafts an order's hidden scenarios for a person to approve", () => {
  it("drafts through the gateway (metered, no run), the order waits, approve activates them and queues it, and the worker never sees their source", async () => {
    const { t, parts, order, agentPrompts, writerRequests } = await setUp(() =>
      JSON.stringify({ scenarios: [{ name: "initials-case.test.js", content: DRAFT }] }),
    );
    const drafted = await draftOrderAcceptance(parts, order.id, "sim-demo");
    expect(drafted.order.status).toBe("waiting");
    expect(drafted.scenarios).toEqual([{ name: "initials-case.test.js", content: DRAFT }]);

    // The writer was asked with the order, its acceptance and the repository's test conventions.
    const asked = messagesText(writerRequests[0]!, ["user"]);
    expect(asked).toContain(`Work order WO-${order.id}: ${TITLE}`);
    expect(asked).toContain("upper-case, one letter per word");
    expect(asked).toContain("test/upper.test.js");
    expect(messagesText(writerRequests[0]!, ["system"])).toContain(HOLDOUT_COMMAND);

    // Metered like any request: one row, no run, charged to the order.
    const metered = await t.ledger.metering.listModelRequests();
    expect(metered.map((r) => [r.run_id, r.order_id, r.model, r.status])).toEqual([
      [null, order.id, "sim-demo", 200],
    ]);
    expect(metered[0]!.output_tokens).toBeGreaterThan(0);

    // A draft judges nothing and no agent works the order until a person approves.
    expect((await t.ledger.acceptance.scenariosFor(order.id)).scenarios).toEqual([]);
    await t.line.run();
    expect(await t.ledger.listRuns(order.id)).toEqual([]);
    expect(agentPrompts).toEqual([]);

    const approved = await t.ledger.controls.apply("approve", order.id, "read the drafts");
    expect(approved.status).toBe("queued");
    expect(
      (await t.ledger.acceptance.listScenarios(order.id)).map((s) => [s.name, s.status, s.source]),
    ).toEqual([["initials-case.test.js", "active", "acceptance-writer"]]);

    await t.line.run();
    const [landed] = await t.ledger.listOrders();
    expect([landed!.status, landed!.attempts]).toEqual(["landed", 2]);
    // The first patch passed the visible test and failed only the approved draft.
    const [first] = await t.ledger.listRuns(order.id);
    expect((await t.ledger.listGateResults(first!.id)).map((g) => [g.gate, g.passed])).toEqual([
      ["test", true],
      ["holdout", false],
    ]);
    const retry = agentPrompts.find((p) => p.includes(FEEDBACK_HEADING));
    expect(retry).toContain('check "initials are upper-case letters, one per word" failed');
    // Neither the prompts nor the feedback ever carried the drafted source.
    expect(agentPrompts.length).toBeGreaterThan(0);
    for (const prompt of agentPrompts) {
      expect(prompt).not.toContain(HIDDEN_CALL);
      expect(prompt).not.toContain("grace brewster hopper");
      expect(prompt).not.toContain(ACCEPTANCE_WRITER_MARKER);
    }
    // The factory-level key was revoked once the draft was written.
    expect(t.gateway.keys.active).toBe(0);
  });

  it.each([
    [
      "prose, not JSON",
      () => "Here are some tests you could write: check upper-case.",
      /the model gave no usable scenarios: .*(parse|JSON)/i,
    ],
    [
      "JSON of the wrong shape",
      () => JSON.stringify({ files: ["a.test.js"] }),
      /the model gave no usable scenarios: .*(schema|match|valid)/i,
    ],
    [
      "a name that is a path",
      () => JSON.stringify({ scenarios: [{ name: "../../etc/x.test.js", content: DRAFT }] }),
      /scenario name "\.\.\/\.\.\/etc\/x\.test\.js" is not a plain file name/,
    ],
    [
      "an empty scenario",
      () => JSON.stringify({ scenarios: [{ name: "empty.test.js", content: "  \n" }] }),
      /scenario "empty\.test\.js" is empty/,
    ],
  ])(
    "refuses %s with a clear error and stores nothing (the request is still metered)",
    async (_, writer, reason) => {
      const { t, parts, order } = await setUp(writer);
      const error = await draftOrderAcceptance(parts, order.id, "sim-demo").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isNightshiftError(error) && error.code).toBe("acceptance_draft_unusable");
      expect((error as Error).message).toMatch(reason);
      expect((error as Error).message).toMatch(/nothing was stored$/);
      expect(await t.ledger.acceptance.listScenarios(order.id)).toEqual([]);
      expect((await t.ledger.getOrder(order.id))?.status).toBe("queued");
      const metered = await t.ledger.metering.listModelRequests();
      expect(metered.length).toBeGreaterThan(0);
      expect(
        metered.every((r) => r.run_id === null && r.order_id === order.id && r.status === 200),
      ).toBe(true);
      expect(t.gateway.keys.active).toBe(0);
    },
  );

  it("refuses an order without acceptance criteria or with scenarios already, before asking any model", async () => {
    const { t, parts, writerRequests } = await setUp(() => "unused");
    const [bare, given] = await t.ledger.addOrders([
      { title: "No criteria" },
      {
        title: "Has its own",
        acceptance: "x",
        holdout: [{ name: "own.test.js", content: "// own" }],
      },
    ]);
    for (const [id, message] of [
      [bare!.id, /no acceptance criteria/],
      [given!.id, /already has 1 hidden scenario/],
    ] as const) {
      const error = await draftOrderAcceptance(parts, id, "sim-demo").catch((e: unknown) => e);
      expect(isNightshiftError(error) && error.code).toBe("acceptance_draft_refused");
      expect((error as Error).message).toMatch(message);
    }
    expect(writerRequests).toEqual([]);
    expect(await t.ledger.metering.listModelRequests()).toEqual([]);
  });
});
