import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/index.ts";
import {
  createDependencyGate,
  createDiffPolicyGate,
  createHoldoutGate,
  createRatchet,
  createReviewerGate,
  createSecretScanGate,
  DEFAULT_PROTECTED_PATHS,
  type GateContext,
  REVIEWER_MARKER,
  runGates,
} from "../../src/gates/index.ts";
import { messagesText, startSimulator } from "../../src/sim/index.ts";
import { sh } from "../workspace/helpers.ts";

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

/** A real repository with a base commit, and a helper to commit a candidate on top of it. */
async function repo(files: Record<string, string> = { "README.md": "hello\n" }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-gates-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  sh(dir, "init", "--quiet", "-b", "main");
  await write(dir, files);
  sh(dir, "add", "-A");
  sh(dir, "commit", "--quiet", "-m", "base");
  const base = sh(dir, "rev-parse", "HEAD");
  return {
    dir,
    base,
    async candidate(changes: Record<string, string | Buffer>): Promise<GateContext> {
      await write(dir, changes);
      sh(dir, "add", "-A");
      sh(dir, "commit", "--quiet", "-m", "candidate");
      return { workspacePath: dir, base, commit: sh(dir, "rev-parse", "HEAD") };
    },
  };
}

async function write(dir: string, files: Record<string, string | Buffer>) {
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
}

const policy = {
  maxFiles: 3,
  maxLines: 20,
  protectedPaths: DEFAULT_PROTECTED_PATHS,
  allowBinary: false,
};

describe("diff policy gate", () => {
  it("passes a small change and refuses protected paths, binaries and oversized diffs", async () => {
    const gate = createDiffPolicyGate(policy);
    const r = await repo();
    expect(
      (await gate.run(await r.candidate({ "src/a.ts": "export const a = 1;\n" }))).passed,
    ).toBe(true);
    const bad = await gate.run(
      await r.candidate({
        ".github/workflows/ci.yml": "on: push\n",
        "package-lock.json": "{}\n",
        "logo.png": Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 0, 0, 0]),
        "src/big.ts": "x\n".repeat(30),
      }),
    );
    expect(bad.passed).toBe(false);
    expect(bad.output).toContain("touches protected path .github/workflows/ci.yml");
    expect(bad.output).toContain("touches protected path package-lock.json");
    expect(bad.output).toContain("binary file logo.png");
    expect(bad.output).toMatch(/changes \d+ files; at most 3/);
    expect(bad.output).toMatch(/changes \d+ lines; at most 20/);
  });

  it("cannot judge without a base, and says so with a typed error", async () => {
    const gate = createDiffPolicyGate(policy);
    const r = await repo();
    const ctx = await r.candidate({ "a.txt": "a\n" });
    await expect(gate.run({ ...ctx, base: undefined })).rejects.toMatchObject({
      code: "gate_missing_context",
    });
  });
});

describe("secret scan gate", () => {
  it("catches an AWS secret key and a private key block the candidate adds, masked", async () => {
    const r = await repo();
    const { privateKey } = generateKeyPairSync("rsa", {
      modulusLength: 1024,
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    const secret = "Zq1vQ8dY2lK9pX0rT7uW3eN5bM6cH4jF1aG8sD2o";
    const outcome = await createSecretScanGate().run(
      await r.candidate({
        "config/aws.env": `AWS_ACCESS_KEY_ID=AKIA2E0A8F3B244C9986\nAWS_SECRET_ACCESS_KEY=${secret}\n`,
        "deploy/id_rsa": privateKey,
      }),
    );
    expect(outcome.passed).toBe(false);
    expect(outcome.output).toMatch(/config\/aws\.env:2: .*AWS Secret Access Key/);
    expect(outcome.output).toMatch(/deploy\/id_rsa:1: .*private key/);
    expect(outcome.output).not.toContain(secret);
  });

  it("passes clean changes, and does not blame a change for a secret already on main", async () => {
    const r = await repo({
      "old.env": "AWS_SECRET_ACCESS_KEY=Zq1vQ8dY2lK9pX0rT7uW3eN5bM6cH4jF1aG8sD2o\n",
    });
    const outcome = await createSecretScanGate().run(
      await r.candidate({
        "old.env":
          "AWS_SECRET_ACCESS_KEY=Zq1vQ8dY2lK9pX0rT7uW3eN5bM6cH4jF1aG8sD2o\nREGION=eu-west-1\n",
        "src/a.ts": "export const apiKey = process.env.API_KEY;\n",
      }),
    );
    expect(outcome.passed, outcome.output).toBe(true);
  });
});

describe("dependency gate", () => {
  it("lists packages a change adds for review, and lets allowed ones through", async () => {
    const manifest = (deps: Record<string, string>, dev: Record<string, string> = {}) =>
      `${JSON.stringify({ name: "x", dependencies: deps, devDependencies: dev }, null, 2)}\n`;
    const r = await repo({ "package.json": manifest({ zod: "^4.0.0" }) });
    const ctx = await r.candidate({
      "package.json": manifest({ zod: "^4.1.0", "left-pad": "1.3.0" }, { vitest: "^4.0.0" }),
    });
    const outcome = await createDependencyGate({ allow: ["vitest"] }).run(ctx);
    expect(outcome.passed).toBe(false);
    expect(outcome.output).toContain(
      "new package for review: left-pad@1.3.0 (dependencies in package.json)",
    );
    expect(outcome.output).not.toContain("zod");
    expect(outcome.output).not.toContain("vitest");
    const allowed = await createDependencyGate({ allow: ["vitest", "left-pad"] }).run(ctx);
    expect(allowed.passed).toBe(true);
  });
});

describe("holdout gate", () => {
  async function holdoutDir(scenarios: Record<string, string>) {
    const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-holdout-src-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await write(dir, scenarios);
    return dir;
  }

  it("runs hidden scenarios on a copy of the candidate and returns only pass/fail and a hint", async () => {
    const r = await repo({ "lib.sh": "greet() { echo hello; }\n" });
    const dir = await holdoutDir({
      "greets.sh":
        '. ./lib.sh; [ "$(greet)" = hello ] || { echo "SECRET EXPECTATION hello"; exit 1; }\n',
      "shouts.sh":
        '. ./lib.sh; [ "$(greet)" = HELLO ] || { echo "SECRET EXPECTATION HELLO"; exit 1; }\n',
    });
    const gate = createHoldoutGate({ dir, command: "bash {file}" });
    const ctx = await r.candidate({ "lib.sh": "greet() { echo hello; }\n# touched\n" });
    const outcome = await gate.run(ctx);
    expect(outcome.passed).toBe(false);
    expect(outcome.output).toContain("Hidden acceptance scenarios failed: 1 of 2 scenario run(s)");
    expect(outcome.output).toContain("- scenario shouts.sh:");
    expect(outcome.output).not.toContain("greets.sh");
    expect(outcome.output).not.toContain("SECRET EXPECTATION");
    expect(outcome.feedback).toBe(outcome.output);
    // The scenarios never enter the agent's workspace.
    expect(existsSync(path.join(r.dir, ".holdout"))).toBe(false);
    expect(sh(r.dir, "status", "--porcelain")).toBe("");

    const fixed = await r.candidate({
      "lib.sh": 'greet() { [ -n "$LOUD" ] && echo HELLO || echo hello; }\n',
    });
    const single = await createHoldoutGate({ dir, command: "bash .holdout/greets.sh" }).run(fixed);
    expect(single.passed).toBe(true);
  });
});

describe("holdout gate with scenarios bound to orders", () => {
  const tap = (name: string, expected: string, body: string) =>
    [
      'const { test } = require("node:test");',
      'const assert = require("node:assert/strict");',
      'const { slug } = require("../lib.js");',
      `test(${JSON.stringify(name)}, () => { const got = ${body}; assert.equal(got, ${JSON.stringify(expected)}, "slug keeps words apart with one dash"); });`,
    ].join("\n");

  it("runs the order's own scenarios and every landed order's, and feeds back the scenario's name and observation, never its source", async () => {
    const r = await repo({ "lib.js": "exports.slug = (t) => t.toLowerCase();\n" });
    const empty = await mkdtemp(path.join(os.tmpdir(), "nightshift-holdout-src-"));
    cleanups.push(() => rm(empty, { recursive: true, force: true }));
    const asked: (number | undefined)[] = [];
    const gate = createHoldoutGate({
      dir: path.join(empty, "missing"),
      command: "node --test --test-reporter=tap {file}",
      scenarios: async (orderId) => {
        asked.push(orderId);
        return [
          { orderId: 1, name: "lower.test.js", content: tap("lower-cases", "abc", 'slug("ABC")') },
          { orderId: 7, name: "dashes.test.js", content: tap("joins words", "a-b", 'slug("A B")') },
        ];
      },
    });
    const ctx = await r.candidate({ "lib.js": "exports.slug = (t) => t.toLowerCase();\n// x\n" });
    const order = { id: 7, title: "Slugs join words with dashes", spec: "", acceptance: "" };
    const outcome = await gate.run({ ...ctx, order });
    expect(asked).toEqual([7]);
    expect(outcome.passed).toBe(false);
    const text = outcome.output;
    expect(text).toContain("failed: 1 of 2 scenario run(s)");
    expect(text).toContain("- scenario dashes.test.js (WO-7, this order's acceptance):");
    expect(text).toContain('check "joins words" failed');
    expect(text).toContain("expected: a-b");
    expect(text).toContain("observed: a b");
    expect(text).toContain("This order states no acceptance criteria");
    expect(text).not.toContain("re-read");
    expect(text).not.toContain("lower.test.js");
    // Not one line of the scenario's source, nor where it was run.
    for (const line of tap("joins words", "a-b", 'slug("A B")').split("\n")) {
      expect(text).not.toContain(line.trim());
    }
    expect(text).not.toMatch(/nightshift-holdout-|require\(/);

    // With acceptance criteria, the hint points at them; a landed order's scenario is named as such.
    const fixed = await r.candidate({ "lib.js": 'exports.slug = (t) => t.replace(" ", "-");\n' });
    const again = await gate.run({
      ...fixed,
      order: { ...order, acceptance: "words joined by -" },
    });
    expect(again.passed).toBe(false);
    expect(again.output).toContain("- scenario lower.test.js (WO-1, a landed order's acceptance):");
    expect(again.output).toContain("expected: abc");
    expect(again.output).toContain("keep that behaviour working");
    // The assertion's message is a line of the source: it stays hidden too.
    expect(again.output).not.toContain("slug keeps words apart");
    const good = await r.candidate({
      "lib.js": 'exports.slug = (t) => t.toLowerCase().replace(" ", "-");\n',
    });
    expect((await gate.run({ ...good, order })).passed).toBe(true);
  });
});

describe("reviewer gate", () => {
  it("asks a model through an OpenAI-compatible endpoint and follows its structured verdict", async () => {
    const prompts: string[] = [];
    const sim = await startSimulator({
      policy: (request) => {
        const text = messagesText(request, ["system", "user"]);
        prompts.push(text);
        const reject = text.includes("rm -rf");
        return {
          content: JSON.stringify({
            verdict: reject ? "reject" : "approve",
            reasons: reject
              ? ["deletes files the order did not ask about"]
              : ["does what WO-7 asks"],
          }),
        };
      },
    });
    cleanups.push(sim.close);
    const r = await repo();
    const gate = createReviewerGate({ model: "sim-reviewer" });
    const order = {
      id: 7,
      title: "Add a greeting",
      spec: "Say hello.",
      acceptance: "prints hello",
    };
    const model = async () => ({ baseURL: sim.url, apiKey: "sim" });
    const good = await gate.run({
      ...(await r.candidate({ "hello.sh": "echo hello\n" })),
      order,
      model,
    });
    expect(good.passed, good.output).toBe(true);
    expect(good.output).toContain("does what WO-7 asks");
    expect(prompts[0]).toContain(REVIEWER_MARKER);
    expect(prompts[0]).toContain("Work order WO-7: Add a greeting");
    expect(prompts[0]).toContain("+echo hello");

    const bad = await gate.run({
      ...(await r.candidate({ "clean.sh": "rm -rf /tmp/x\n" })),
      order,
      model,
    });
    expect(bad.passed).toBe(false);
    expect(bad.output).toContain(
      "reviewer rejected the change:\n- deletes files the order did not ask about",
    );
  });

  it("fails closed when the model's answer is not a verdict", async () => {
    const sim = await startSimulator({ policy: () => ({ content: "looks fine to me!" }) });
    cleanups.push(sim.close);
    const r = await repo();
    const outcome = await createReviewerGate({ model: "m" }).run({
      ...(await r.candidate({ "a.txt": "a\n" })),
      order: { id: 1, title: "t", spec: "", acceptance: "" },
      model: async () => ({ baseURL: sim.url, apiKey: "sim" }),
    });
    expect(outcome.passed).toBe(false);
    expect(outcome.output).toMatch(/reviewer gave no usable verdict/);
  });
});

describe("the configured ratchet", () => {
  it("builds the gates in the configured order, skipping unconfigured ones, and stops at the first red", async () => {
    const config = configSchema.parse({
      gates: {
        test: "true",
        lint: "echo lint-ok",
        order: ["lint", "diff", "secrets", "test", "build"],
      },
    });
    const gates = createRatchet(config.gates, { stateDir: "/tmp", agentModel: "m" });
    expect(gates.map((g) => [g.name, g.scope ?? "tree"])).toEqual([
      ["lint", "tree"],
      ["diff", "change"],
      ["secrets", "change"],
      ["test", "tree"],
    ]);
    const r = await repo();
    const result = await runGates(gates, await r.candidate({ "nightshift.toml": "[line]\n" }));
    expect(result.passed).toBe(false);
    expect(result.outcomes.map((o) => [o.gate, o.passed])).toEqual([
      ["lint", true],
      ["diff", false],
    ]);
  });
});
