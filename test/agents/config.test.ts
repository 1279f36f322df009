import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { preparedDriver } from "../../src/cli/factory.ts";
import { configTemplate, parseConfig } from "../../src/config/index.ts";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "nightshift-agent-config-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const factory = (toml: string) => ({
  root,
  config: parseConfig(toml),
  stateDir: path.join(root, ".nightshift"),
});

describe("[agent] configuration of CLI drivers", () => {
  it("the template's values are the defaults", () => {
    const fromTemplate = parseConfig(
      configTemplate({ name: "x", branch: "main", test: "npm test" }),
    );
    expect(fromTemplate.agent).toEqual(parseConfig("").agent);
    expect(parseConfig("").agent).toMatchObject({
      driver: "builtin",
      wall_time_minutes: 60,
      claude_code: {
        permission_mode: "bypassPermissions",
        disallowed_tools: ["WebFetch", "WebSearch"],
      },
      codex: { sandbox: "workspace-write" },
    });
  });

  it("builds and checks the configured driver before the line starts", async () => {
    const driver = await preparedDriver(
      factory('[agent]\ndriver = "claude-code"\nmodel = "sim-demo"\n'),
    );
    expect(driver.name).toBe("claude-code");
  });

  it("a misspelt option or value is refused with the key named", () => {
    expect(() => parseConfig('[agent.codex]\nsandbox = "read-only"\n')).toThrow(
      /\[agent\] codex\.sandbox/,
    );
    expect(() => parseConfig('[agent.claude_code]\npermision_mode = "acceptEdits"\n')).toThrow(
      /permision_mode/,
    );
    expect(() => parseConfig('[agent]\ndriver = "cursor"\n')).toThrow(/driver.*cursor/);
  });

  it("a missing CLI or instructions file stops the line up front, with the fix", async () => {
    await expect(
      preparedDriver(
        factory('[agent]\ndriver = "opencode"\n[agent.opencode]\npath = "bin/none"\n'),
      ),
    ).rejects.toMatchObject({
      code: "agent_cli_missing",
      hint: expect.stringContaining("npm install -E --save-dev opencode-ai"),
    });
    await expect(
      preparedDriver(factory('[agent]\ndriver = "codex"\ninstructions_file = "NOPE.md"\n')),
    ).rejects.toMatchObject({ code: "agent_instructions_missing" });
    await writeFile(path.join(root, "AGENTS.md"), "Be brief.\n");
    await expect(
      preparedDriver(factory('[agent]\ndriver = "codex"\ninstructions_file = "AGENTS.md"\n')),
    ).resolves.toMatchObject({ name: "codex" });
  });
});
