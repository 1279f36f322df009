import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { geminiCliDriver } from "../../src/agents/index.ts";
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

// Real Gemini CLI (the devDependency), against the simulator, through the gateway, on the Gemini API.
let bench: AgentBench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

const INSTRUCTIONS_MARKER = "Factory rule 7: always answer in plain English.";
const SUMMARY = "Done: notes/hello.txt created, README.md edited, command run.";

/** The scripted session, with Gemini CLI's own tool names; inside a sandbox it ends with a write outside the workspace. */
function script(ws: string, outside?: string) {
  return scenarioFromValue(
    {
      name: "gemini-cli-edits",
      steps: [
        {
          name: "create a file",
          expect: {
            tools_include: ["write_file", "replace", "run_shell_command", "read_file"],
            model: "sim-demo",
          },
          reply: {
            content: "I will add the notes file first.",
            tool_calls: [
              {
                name: "write_file",
                arguments: { file_path: path.join(ws, "notes/hello.txt"), content: "hello\n" },
              },
            ],
          },
        },
        {
          name: "read before editing",
          reply: {
            tool_calls: [
              { name: "read_file", arguments: { file_path: path.join(ws, "README.md") } },
            ],
          },
        },
        {
          name: "edit the readme",
          expect: { tool_result_contains: "Hello from the sample project." },
          reply: {
            tool_calls: [
              {
                name: "replace",
                arguments: {
                  file_path: path.join(ws, "README.md"),
                  instruction: "Greet from Gemini CLI instead of the sample project.",
                  old_string: "Hello from the sample project.",
                  new_string: "Hello from Gemini CLI, through the gateway.",
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
                name: "run_shell_command",
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
                      name: "run_shell_command",
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
          reply: SUMMARY,
        },
      ],
    },
    "gemini-cli-edits",
  );
}

describe("the Gemini CLI driver", () => {
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
      // Next to the workspace: where other runs' worktrees would be.
      if (sandboxed) outside = path.join(bench.scratch, "outside.txt");
      const instructions = path.join(bench.scratch, "instructions.md");
      await writeFile(instructions, `${INSTRUCTIONS_MARKER}\n`);
      const cliDriver = geminiCliDriver({
        homesDir: path.join(bench.scratch, "homes"),
        instructionsFile: instructions,
        env: bench.env,
        wallTimeMs: 120_000,
      });
      const cli = await cliDriver.preflight();
      expect(cli.version).toMatch(/^\d+\.\d+\.\d+$/);
      const driver = sandboxed ? inSandbox(cliDriver) : cliDriver;

      const run = await runDriver(bench, driver, { workspacePath: ws, prompt: "Add notes." });

      expect(run.result).toMatchObject({ reason: "completed", summary: SUMMARY });
      // The diff: exactly what the scenario asked for.
      expect(workspaceStatus(ws)).toEqual([
        " M README.md",
        "?? made-by-command.txt",
        "?? notes/hello.txt",
      ]);
      expect(await readFile(path.join(ws, "README.md"), "utf8")).toContain(
        "Hello from Gemini CLI, through the gateway.",
      );
      expect(await readFile(path.join(ws, "notes/hello.txt"), "utf8")).toBe("hello\n");
      expect(await readFile(path.join(ws, "made-by-command.txt"), "utf8")).toMatch(/^v\d+/);

      // The normalized events.
      const calls = ofKind(run.events, "tool_call");
      expect(calls.map((c) => c.tool)).toEqual([
        "write_file",
        "read_file",
        "replace",
        "run_shell_command",
        ...(sandboxed ? ["run_shell_command"] : []),
      ]);
      const results = ofKind(run.events, "tool_result");
      // Gemini CLI reports a shell command that fails as a tool success whose output says why.
      expect(results.map((r) => [r.callId, r.tool, r.isError])).toEqual(
        calls.map((c) => [c.callId, c.tool, false]),
      );
      expect(results[3]?.output).toContain("command-ran");
      expect(ofKind(run.events, "message").map((m) => m.text)).toEqual([
        "I will add the notes file first.",
        SUMMARY,
      ]);
      expect(
        ofKind(run.events, "file_change")
          .map((c) => `${c.change} ${c.path}`)
          .sort(),
      ).toEqual(["created made-by-command.txt", "created notes/hello.txt", "modified README.md"]);
      expect(ofKind(run.events, "error")).toEqual([]);

      // Metering: every request went through the gateway on this run's key, counted once, and the
      // gateway's count equals the simulator's (and the CLI's own).
      const requests = sandboxed ? 6 : 5;
      const metered = await metering(bench, run.runId);
      expect(metered.requests).toBe(requests);
      expect(
        metered.rows.every((r) => r.status === 200 && r.protocol === "gemini" && r.stream),
      ).toBe(true);
      expect(metered.rows.some((r) => r.usage_estimated)).toBe(false);
      expect(bench.simulator.stats.byProtocol.gemini.requests).toBe(requests);
      expect(bench.simulator.stats.requests).toBe(requests);
      expect(metered.inputTokens).toBe(bench.simulator.stats.promptTokens);
      expect(metered.outputTokens).toBe(bench.simulator.stats.completionTokens);
      expect(usageOf(run.events)).toEqual({
        inputTokens: metered.inputTokens,
        outputTokens: metered.outputTokens,
      });
      expect(run.result.inputTokens).toBe(metered.inputTokens);

      // The factory's instructions reached the model; nothing tried to leave the machine.
      expect(messagesText(bench.requests[0]!, ["system", "user"])).toContain(INSTRUCTIONS_MARKER);
      expect(bench.trap.attempts).toEqual([]);

      expectOutsideWriteBlocked(run.events, sandboxed, {
        output: results[4]?.output,
        outside,
        agent: "gemini (the gemini-cli agent)",
      });
    },
  );

  it("ends with a clear error when the model endpoint refuses its requests", async () => {
    bench = await startAgentBench(
      scenarioPolicy(
        scenarioFromValue({
          name: "wrong-model",
          steps: [{ expect: { model: "some-other-model" }, reply: "never sent" }],
        }),
      ),
    );
    const ws = await makeWorkspace(bench);
    const driver = geminiCliDriver({ homesDir: path.join(bench.scratch, "homes"), env: bench.env });
    const run = await runDriver(bench, driver, { workspacePath: ws, prompt: "Do something." });
    expect(run.result.reason).toBe("error");
    expect(run.result.summary).toMatch(
      /^Gemini CLI failed: API Error: 400 .*expected model "some-other-model", saw "sim-demo"$/,
    );
    expect(ofKind(run.events, "error").at(-1)?.message).toBe(run.result.summary);
    expect(workspaceStatus(ws)).toEqual([]);
  });

  it("stops at max_steps with its own turn limit", async () => {
    bench = await startAgentBench(() => ({
      toolCalls: [
        { name: "run_shell_command", arguments: { command: "echo again", description: "loop" } },
      ],
    }));
    const ws = await makeWorkspace(bench);
    const driver = geminiCliDriver({ homesDir: path.join(bench.scratch, "homes"), env: bench.env });
    const run = await runDriver(bench, driver, { workspacePath: ws, prompt: "Loop.", maxSteps: 3 });
    expect(run.result.reason).toBe("max_steps");
    expect(ofKind(run.events, "tool_call")).toHaveLength(3);
    expect((await metering(bench, run.runId)).requests).toBe(3);
  });
});
