import { chmod, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLedger } from "../../src/ledger/index.ts";
import { cli, git, makeRepo, TempDirs } from "../support/cli.ts";
import {
  type FakeProvider,
  startFakeAnthropic,
  startFakeOpenAICompatible,
} from "../support/fake-providers.ts";

// Before the line takes an order, `run` (and `doctor`) check everything that would make every run
// fail. A failure stops the line with the cause and the fix, and no order loses an attempt.

const temps = new TempDirs();
const PROVIDER_KEY = "sk-ant-the-right-key";
let anthropic: FakeProvider;
let repo: string;

beforeAll(async () => {
  anthropic = await startFakeAnthropic({
    apiKey: PROVIDER_KEY,
    script: () => ({ text: "ok", usage: { input: 12, output: 1 } }),
  });
  repo = await makeRepo(temps, {
    "package.json": '{ "name": "shop", "private": true, "scripts": { "test": "node --test" } }\n',
  });
  git(repo, "checkout", "--quiet", "--detach");
  await withConfig(anthropicConfig());
  expect((await cli(repo, ["add", "Add a greeting", "--max-attempts", "2"])).code).toBe(0);
});

afterAll(async () => {
  await anthropic.close();
  await temps.removeAll();
});

async function withConfig(toml: string): Promise<void> {
  await writeFile(path.join(repo, "nightshift.toml"), toml);
}

/** The order is still queued, with no run: no attempt was used. */
async function expectNothingClaimed(): Promise<void> {
  const status = JSON.parse((await cli(repo, ["status", "--json"])).stdout) as {
    orders: { status: string }[];
    runs: unknown[];
  };
  expect(status.orders.map((o) => o.status)).toEqual(["queued"]);
  expect(status.runs).toEqual([]);
}

const anthropicConfig = (extra = "") => `
[agent]
driver = "builtin"
model = "claude-sonnet-5-5"
${extra}
[providers.anthropic]
base_url = "${anthropic.url}"
`;

describe("the pre-flight check stops the line with cause and fix, using no attempt", () => {
  it.each([
    {
      case: "a missing key",
      toml: () => anthropicConfig(),
      env: { ANTHROPIC_API_KEY: "" },
      cause:
        'provider "anthropic" needs its API key in the environment variable ANTHROPIC_API_KEY, which is not set',
      fix: "export ANTHROPIC_API_KEY=<your anthropic key>",
    },
    {
      case: "a model no provider serves",
      toml: () => anthropicConfig().replace('model = "claude-sonnet-5-5"', 'model = "gpt-5.5"'),
      env: { ANTHROPIC_API_KEY: PROVIDER_KEY },
      cause: 'no configured provider serves model "gpt-5.5"; configured: anthropic (claude-*)',
      fix: 'builtin speaks openai-chat: route "gpt-5.5" to a provider',
    },
    {
      case: "an agent whose protocol the provider cannot be spoken to in",
      toml: () => `
[agent]
driver = "claude-code"
model = "qwen3-coder"
[providers.local]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
protocols = ["openai-responses"]
`,
      env: {},
      cause: "nightshift cannot translate anthropic-messages requests into it",
      fix: "claude-code speaks anthropic-messages",
    },
    {
      case: "a model without a price",
      toml: () => `
[agent]
model = "my-own-model"
[providers.local]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
`,
      env: {},
      cause: 'no price is known for model "my-own-model" (provider "local")',
      fix: "point [gateway] prices_file at it",
    },
    {
      case: "a key the provider refuses (401)",
      toml: () => anthropicConfig(),
      env: { ANTHROPIC_API_KEY: "sk-ant-revoked" },
      cause: `${"answered 401"}`,
      fix: "the provider refused the key in ANTHROPIC_API_KEY",
    },
    {
      case: "an agent CLI that is not installed",
      toml: () =>
        anthropicConfig('[agent.claude_code]\npath = "/nonexistent/claude"').replace(
          'driver = "builtin"',
          'driver = "claude-code"',
        ),
      env: { ANTHROPIC_API_KEY: PROVIDER_KEY },
      cause: "/nonexistent/claude",
      fix: "fix:",
    },
    {
      case: "an agent CLI too slow to answer --version",
      toml: () =>
        anthropicConfig(
          `[agent.claude_code]\npath = "${path.join(repo, "..", "slow-claude")}"`,
        ).replace('driver = "builtin"', 'driver = "claude-code"'),
      env: { ANTHROPIC_API_KEY: PROVIDER_KEY, NIGHTSHIFT_CLI_CHECK_TIMEOUT_MS: "300" },
      cause:
        "did not answer `claude --version` within 0.3 s: it is installed, but starting it is slow here",
      fix: "NIGHTSHIFT_CLI_CHECK_TIMEOUT_MS raises the limit",
    },
  ])("$case", async ({ toml, env, cause, fix }) => {
    const slow = path.join(repo, "..", "slow-claude");
    await writeFile(slow, "#!/bin/sh\nexec sleep 30\n");
    await chmod(slow, 0o755);
    await withConfig(toml());

    const run = await cli(repo, ["run"], { env });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("the line did not start (no order was claimed, no attempt used)");
    expect(run.stderr).toContain(cause);
    expect(run.stderr).toContain(fix);
    await expectNothingClaimed();

    const doctor = await cli(repo, ["doctor"], { env });
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toContain("FAIL");
    expect(doctor.stdout).toContain(cause);
  });
});

describe("nightshift doctor on a working setup", () => {
  it("passes every check and meters its one test request to each provider", async () => {
    const router = await startFakeOpenAICompatible({
      apiKey: "sk-or",
      script: () => ({ text: "ok", usage: { input: 9, output: 2 } }),
    });
    try {
      await withConfig(`${anthropicConfig()}
[providers.openrouter]
kind = "openai-compatible"
base_url = "${router.url}"
api_key_env = "OPENROUTER_API_KEY"
models = ["openai/*"]
[gateway]
prices_file = "prices.json"
`);
      await writeFile(
        path.join(repo, "prices.json"),
        JSON.stringify({
          as_of: "2026-11-30",
          models: { "openai/gpt-oss-20b": { input: 0.05, output: 0.2 } },
        }),
      );
      expect(
        (await cli(repo, ["add", "Use the open model", "--model", "openai/gpt-oss-20b"])).code,
      ).toBe(0);
      const anthropicBefore = anthropic.reported.requests;

      const doctor = await cli(repo, ["doctor"], {
        env: { ANTHROPIC_API_KEY: PROVIDER_KEY, OPENROUTER_API_KEY: "sk-or" },
      });
      expect(doctor.stdout).toContain("all checks passed");
      expect(doctor.code).toBe(0);
      expect(doctor.stdout).toContain(
        'builtin with model "claude-sonnet-5-5": provider "anthropic" as "claude-sonnet-5-5" (openai-chat translated to anthropic-messages',
      );
      expect(doctor.stdout).toContain(
        'builtin with model "openai/gpt-oss-20b": provider "openrouter" as "openai/gpt-oss-20b" (openai-chat, native)',
      );
      expect(anthropic.reported.requests).toBe(anthropicBefore + 1);
      expect(router.reported.requests).toBe(1);

      // The test requests are metered like any other, as the factory's own (no run).
      const ledger = await openLedger({
        kind: "embedded",
        dataDir: path.join(repo, ".nightshift", "ledger"),
      });
      try {
        // Earlier cases' refused test requests (401) are in the ledger too, metered at zero.
        const rows = (await ledger.metering.listModelRequests()).filter(
          (r) => r.run_id === null && r.status === 200,
        );
        expect(
          rows.map((r) => [r.model, r.status, r.input_tokens, r.output_tokens]).sort(),
        ).toEqual([
          ["claude-sonnet-5-5", 200, 12, 1],
          ["openai/gpt-oss-20b", 200, 9, 2],
        ]);
      } finally {
        await ledger.close();
      }
    } finally {
      await router.close();
    }
  });
});
