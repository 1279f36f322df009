import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { claudeCodeDriver } from "../../src/agents/index.ts";
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

// Real Claude Code (the devDependency), against the simulator, through the gateway.
let bench: AgentBench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

const INSTRUCTIONS_MARKER = "Factory rule 7: always answer in plain English.";

/** The scripted session; inside a sandbox it ends with a write outside the workspace. */
function script(ws: string, outside?: string) {
  return scenarioFromValue(
    {
      name: "claude-code-edits",
      steps: [
        {
          name: "create a file",
          expect: { tools_include: ["Write", "Edit", "Bash", "Read"], model: "sim-demo" },
          reply: {
            content: "I will add the notes file first.",
            tool_calls: [
              {
                name: "Write",
                arguments: { file_path: path.join(ws, "notes/hello.txt"), content: "hello\n" },
              },
            ],
          },
        },
        {
          name: "read before editing",
          reply: {
            tool_calls: [{ name: "Read", arguments: { file_path: path.join(ws, "README.md") } }],
          },
        },
        {
          name: "edit the readme",
          expect: { tool_result_contains: "Hello from the sample project." },
          reply: {
            tool_calls: [
              {
                name: "Edit",
                arguments: {
                  file_path: path.join(ws, "README.md"),
                  old_string: "Hello from the sample project.",
                  new_string: "Hello from Claude Code, through the gateway.",
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
                name: "Bash",
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
                      name: "Bash",
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
    },
    "claude-code-edits",
  );
}

describe("the Claude Code driver", () => {
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
      const cliDriver = claudeCodeDriver({
        homesDir: path.join(bench.scratch, "homes"),
        instructionsFile: instructions,
        env: bench.env,
        wallTimeMs: 120_000,
      });
      const cli = await cliDriver.preflight();
      expect(cli.version).toMatch(/^\d+\.\d+\.\d+ \(Claude Code\)$/);
      const driver = sandboxed ? inSandbox(cliDriver) : cliDriver;

      const run = await runDriver(bench, driver, { workspacePath: ws, prompt: "Add notes." });

      expect(run.result).toMatchObject({
        reason: "completed",
        summary: "Done: notes/hello.txt created, README.md edited, command run.",
      });
      // The diff: exactly what the scenario asked for.
      expect(workspaceStatus(ws)).toEqual([
        " M README.md",
        "?? made-by-command.txt",
        "?? notes/hello.txt",
      ]);
      expect(await readFile(path.join(ws, "README.md"), "utf8")).toContain(
        "Hello from Claude Code, through the gateway.",
      );
      expect(await readFile(path.join(ws, "made-by-command.txt"), "utf8")).toMatch(/^v\d+/);

      // The normalized events.
      const calls = ofKind(run.events, "tool_call");
      expect(calls.map((c) => c.tool)).toEqual(
        sandboxed ? ["Write", "Read", "Edit", "Bash", "Bash"] : ["Write", "Read", "Edit", "Bash"],
      );
      const results = ofKind(run.events, "tool_result");
      // Only the write outside the workspace fails.
      expect(results.map((r) => [r.callId, r.tool, r.isError])).toEqual(
        calls.map((c, i) => [c.callId, c.tool, i === 4]),
      );
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

      // Metering: every request went through the gateway on this run's key, counted once.
      const requests = sandboxed ? 6 : 5;
      const metered = await metering(bench, run.runId);
      expect(metered.requests).toBe(requests);
      expect(
        metered.rows.every((r) => r.status === 200 && r.protocol === "anthropic-messages"),
      ).toBe(true);
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
        agent: "claude (the claude-code agent)",
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
    const driver = claudeCodeDriver({
      homesDir: path.join(bench.scratch, "homes"),
      env: bench.env,
    });
    const run = await runDriver(bench, driver, { workspacePath: ws, prompt: "Do something." });
    expect(run.result.reason).toBe("error");
    expect(run.result.summary).toMatch(
      /Claude Code failed: API Error: 400 .*expected model "some-other-model"/,
    );
    expect(ofKind(run.events, "error").at(-1)?.message).toBe(run.result.summary);
    expect(workspaceStatus(ws)).toEqual([]);
  });

  it("stops at max_steps with its own turn limit", async () => {
    let ws = "";
    bench = await startAgentBench(() => ({
      toolCalls: [{ name: "Bash", arguments: { command: "echo again", description: "loop" } }],
    }));
    ws = await makeWorkspace(bench);
    const driver = claudeCodeDriver({
      homesDir: path.join(bench.scratch, "homes"),
      env: bench.env,
    });
    const run = await runDriver(bench, driver, { workspacePath: ws, prompt: "Loop.", maxSteps: 3 });
    expect(run.result.reason).toBe("max_steps");
    expect(ofKind(run.events, "tool_call")).toHaveLength(3);
    expect((await metering(bench, run.runId)).requests).toBe(3);
  });
});
