import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openLedger } from "../../src/ledger/index.ts";
import { cli, git, makeRepo, TempDirs } from "../support/cli.ts";
import { lastToolResult, startFakeAnthropic } from "../support/fake-providers.ts";

// What a user with a real key does, end to end through the CLI: init finds the key, doctor passes,
// run lands the change, and every token the provider reported is in the ledger, once.

const temps = new TempDirs();
afterAll(() => temps.removeAll());

const KEY = "sk-ant-user-key";
const GREET = "export const greet = (name) => 'Hello, ' + name + '!';\n";
const GREET_TEST =
  "import { test } from 'node:test';\nimport assert from 'node:assert';\nimport { greet } from '../greet.js';\n" +
  "test('greet', () => assert.strictEqual(greet('Ada'), 'Hello, Ada!'));\n";

describe("a user's repository on a real provider (a fake of Anthropic's API)", () => {
  it("init, doctor and run land the change the model wrote, metered as the provider counted", async () => {
    const anthropic = await startFakeAnthropic({
      apiKey: KEY,
      // The built-in agent's tools, through the Chat-to-Messages translation.
      script: (request) => {
        const result = lastToolResult(request);
        if (!request.body.tools) return { text: "ok" };
        if (result === undefined) {
          return {
            text: "Writing greet and its test.",
            toolCalls: [
              { name: "write_file", arguments: { path: "greet.js", content: GREET } },
              {
                name: "write_file",
                arguments: { path: "test/greet.test.js", content: GREET_TEST },
              },
            ],
          };
        }
        if (result.startsWith("wrote")) {
          return { toolCalls: [{ name: "run_command", arguments: { command: "npm test" } }] };
        }
        return { text: "Added greet(name) with a test; npm test passes." };
      },
    });
    try {
      const repo = await makeRepo(temps, {
        "package.json":
          '{ "name": "shop", "type": "module", "private": true, "scripts": { "test": "node --test" } }\n',
        "index.js": "export const version = 1;\n",
      });
      const env = { ANTHROPIC_API_KEY: KEY };
      const init = await cli(repo, ["init"], { env });
      expect(init.stdout).toContain("providers: anthropic (ANTHROPIC_API_KEY is set)");
      // Point the provider at the fake; everything else is as init wrote it.
      const config = path.join(repo, "nightshift.toml");
      await writeFile(
        config,
        (await readFile(config, "utf8")).replace(
          '# base_url = "https://api.anthropic.com"',
          `base_url = "${anthropic.url}"`,
        ),
      );
      git(repo, "checkout", "--quiet", "--detach");
      expect(
        (await cli(repo, ["add", "Add greet(name)", "--spec", "greet.js exports greet"])).code,
      ).toBe(0);

      const doctor = await cli(repo, ["doctor"], { env });
      expect(doctor.stdout).toContain("all checks passed");

      const run = await cli(repo, ["run"], { env });
      expect(run.stdout).not.toContain("SIMULATED");
      expect(run.stdout).toContain("landed");
      expect(run.code).toBe(0);
      expect(git(repo, "show", "main:greet.js")).toBe(GREET.trimEnd());
      expect(git(repo, "ls-tree", "-r", "--name-only", "main").split("\n").sort()).toEqual([
        "greet.js",
        "index.js",
        "package.json",
        "test/greet.test.js",
      ]);

      const ledger = await openLedger({
        kind: "embedded",
        dataDir: path.join(repo, ".nightshift", "ledger"),
      });
      try {
        const rows = await ledger.metering.listModelRequests();
        expect(rows.length).toBe(anthropic.reported.requests);
        expect(rows.reduce((sum, r) => sum + r.input_tokens, 0)).toBe(
          anthropic.reported.inputTokens,
        );
        expect(rows.reduce((sum, r) => sum + r.output_tokens, 0)).toBe(
          anthropic.reported.outputTokens,
        );
        // doctor's and run's test requests belong to no run; the agent's to its run.
        expect(rows.filter((r) => r.run_id === null)).toHaveLength(2);
        expect(
          rows.filter((r) => r.run_id !== null).every((r) => r.protocol === "openai-chat"),
        ).toBe(true);
      } finally {
        await ledger.close();
      }
      for (const request of anthropic.requests) expect(request.headers["x-api-key"]).toBe(KEY);
    } finally {
      await anthropic.close();
    }
  }, 240_000);
});
