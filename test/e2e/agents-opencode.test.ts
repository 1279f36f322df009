import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { openCodeDriver } from "../../src/agents/index.ts";
import { messagesText, scenarioFromValue, scenarioPolicy } from "../../src/sim/index.ts";
import {
  type AgentBench,
  makeWorkspace,
  metering,
  ofKind,
  runDriver,
  startAgentBench,
  usageOf,
  workspaceStatus,
} from "../support/agents.ts";
import { expectOutsideWriteBlocked, inSandbox } from "../support/agents-sandbox.ts";
import { ensureOpenCode, OPENCODE_INSTALL_TIMEOUT_MS } from "../support/opencode.ts";

// Real OpenCode, against the simulator, through the gateway's Chat Completions. opencode-ai is not
// a devDependency (its lockfile cannot pass `npm ci` from this registry: see docs/agents.md): the
// suite installs the pinned version it tests (test/support/opencode.ts) unless one resolves.
let opencode = "";
beforeAll(async () => {
  opencode = await ensureOpenCode();
}, OPENCODE_INSTALL_TIMEOUT_MS);
let bench: AgentBench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

const INSTRUCTIONS_MARKER = "Factory rule 7: always answer in plain English.";

/** The scripted session; inside a sandbox it ends with a write outside the workspace. */
function script(ws: string, outside?: string) {
  return scenarioFromValue({
    name: "opencode-edits",
    steps: [
      {
        name: "create a file",
        expect: { tools_include: ["write", "edit", "bash", "read"], model: "sim-demo" },
        reply: {
          content: "I will add the notes file first.",
          tool_calls: [
            {
              name: "write",
              arguments: { filePath: path.join(ws, "notes/hello.txt"), content: "hello\n" },
            },
          ],
        },
      },
      {
        name: "read before editing",
        reply: {
          tool_calls: [{ name: "read", arguments: { filePath: path.join(ws, "README.md") } }],
        },
      },
      {
        name: "edit the readme",
        expect: { tool_result_contains: "Hello from the sample project." },
        reply: {
          tool_calls: [
            {
              name: "edit",
              arguments: {
                filePath: path.join(ws, "README.md"),
                oldString: "Hello from the sample project.",
                newString: "Hello from OpenCode, through the gateway.",
              },
            },
          ],
        },
      },
      {
        name: "run a command",
        reply: {
          tool_calls: [
            {
              name: "bash",
              arguments: {
                command:
                  "node -e \"require('fs').writeFileSync('made-by-command.txt', process.version)\" && echo command-ran",
                description: "write a file from a command",
              },
            },
          ],
        },
      },
      ...(outside
        ? [
            {
              name: "write outside the workspace",
              expect: { tool_result_contains: "command-ran" },
              reply: {
                tool_calls: [
                  {
                    name: "bash",
                    arguments: {
                      command: `echo escaped > ${outside}`,
                      description: "write next to the workspace",
                    },
                  },
                ],
              },
            },
          ]
        : []),
      {
        name: "report",
        expect: { tool_result_contains: outside ? "outside.txt" : "command-ran" },
        reply: "Done: notes/hello.txt created, README.md edited, command run.",
      },
    ],
  });
}

describe("the OpenCode driver", () => {
  it.each([
    { where: "on the host", sandboxed: false },
    { where: "inside the bubblewrap sandbox", sandboxed: true },
  ])(
    "creates and edits files and runs a command through the gateway, with every token metered ($where)",
    async ({ sandboxed }) => {
      let ws = "";
      let outside: string | undefined;
      bench = await startAgentBench((request, ctx) =>
        scenarioPolicy(script(ws, outside))(request, ctx),
      );
      ws = await makeWorkspace(bench);
      if (sandboxed) outside = path.join(bench.scratch, "outside.txt");
      const instructions = path.join(bench.scratch, "instructions.md");
      await writeFile(instructions, `${INSTRUCTIONS_MARKER}\n`);
      const cliDriver = openCodeDriver({
        path: opencode,
        homesDir: path.join(bench.scratch, "homes"),
        instructionsFile: instructions,
        env: bench.env,
        wallTimeMs: 120_000,
      });
      expect((await cliDriver.preflight()).version).toMatch(/^\d+\.\d+\.\d+$/);
      const driver = sandboxed ? inSandbox(cliDriver) : cliDriver;

      const run = await runDriver(bench, driver, { workspacePath: ws, prompt: "Add notes." });

      expect(run.result).toMatchObject({
        reason: "completed",
        summary: "Done: notes/hello.txt created, README.md edited, command run.",
      });
      expect(workspaceStatus(ws)).toEqual([
        " M README.md",
        "?? made-by-command.txt",
        "?? notes/hello.txt",
      ]);
      expect(await readFile(path.join(ws, "README.md"), "utf8")).toContain(
        "Hello from OpenCode, through the gateway.",
      );

      const calls = ofKind(run.events, "tool_call");
      expect(calls.map((c) => c.tool)).toEqual(
        sandboxed ? ["write", "read", "edit", "bash", "bash"] : ["write", "read", "edit", "bash"],
      );
      const results = ofKind(run.events, "tool_result");
      expect(results.map((r) => [r.callId, r.tool])).toEqual(calls.map((c) => [c.callId, c.tool]));
      // OpenCode's bash tool reports a failing command as a result, not as a tool error.
      expect(results.every((r) => !r.isError)).toBe(true);
      expect(results[3]?.output).toContain("command-ran");
      expect(ofKind(run.events, "message").map((m) => m.text)).toEqual([
        "I will add the notes file first.",
        "Done: notes/hello.txt created, README.md edited, command run.",
      ]);
      expect(
        ofKind(run.events, "file_change")
          .map((c) => `${c.change} ${c.path}`)
          .sort(),
      ).toEqual(["created made-by-command.txt", "created notes/hello.txt", "modified README.md"]);
      expect(ofKind(run.events, "error")).toEqual([]);

      const metered = await metering(bench, run.runId);
      const requests = sandboxed ? 6 : 5;
      expect(metered.requests).toBe(requests);
      expect(metered.rows.every((r) => r.status === 200 && r.protocol === "openai-chat")).toBe(
        true,
      );
      expect(bench.simulator.stats.requests).toBe(requests);
      expect(metered.inputTokens).toBe(bench.simulator.stats.promptTokens);
      expect(metered.outputTokens).toBe(bench.simulator.stats.completionTokens);
      expect(usageOf(run.events)).toEqual({
        inputTokens: metered.inputTokens,
        outputTokens: metered.outputTokens,
      });

      expect(messagesText(bench.requests[0]!, ["system", "user"])).toContain(INSTRUCTIONS_MARKER);
      expect(bench.trap.attempts).toEqual([]);

      expectOutsideWriteBlocked(run.events, sandboxed, {
        output: results[4]?.output,
        outside,
        agent: "opencode (the opencode agent)",
      });
    },
  );
});
