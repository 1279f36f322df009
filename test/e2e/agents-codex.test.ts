import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { codexDriver } from "../../src/agents/index.ts";
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

// Real Codex (the devDependency), against the simulator, through the gateway's Responses API.
let bench: AgentBench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

const INSTRUCTIONS_MARKER = "Factory rule 7: always answer in plain English.";

const exec = (cmd: string) => ({ tool_calls: [{ name: "exec_command", arguments: { cmd } }] });

/** The scripted session; inside a sandbox it ends with a write outside the workspace. */
function script(outside: string | undefined) {
  return scenarioFromValue({
    name: "codex-edits",
    steps: [
      {
        name: "create a file",
        expect: { tools_include: ["exec_command"], model: "sim-demo" },
        reply: {
          content: "I will add the notes file first.",
          ...exec("mkdir -p notes && printf 'hello\\n' > notes/hello.txt"),
        },
      },
      {
        name: "edit the readme",
        reply: exec(
          "sed -i 's/Hello from the sample project./Hello from Codex, through the gateway./' README.md",
        ),
      },
      {
        name: "run a command",
        reply: exec(
          "node -e \"require('fs').writeFileSync('made-by-command.txt', process.version)\" && echo command-ran",
        ),
      },
      ...(outside
        ? [
            {
              name: "write outside the workspace",
              expect: { tool_result_contains: "command-ran" },
              reply: exec(`echo escaped > ${outside}`),
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

describe("the Codex driver", () => {
  it.each([
    { where: "on the host", sandboxed: false },
    { where: "inside the bubblewrap sandbox", sandboxed: true },
  ])(
    "creates and edits files and runs a command through the gateway, with every token metered ($where)",
    async ({ sandboxed }) => {
      let outside: string | undefined;
      bench = await startAgentBench((request, ctx) =>
        scenarioPolicy(script(outside))(request, ctx),
      );
      const ws = await makeWorkspace(bench);
      // Next to the workspace: where other runs' worktrees would be.
      if (sandboxed) outside = path.join(bench.scratch, "outside.txt");
      const instructions = path.join(bench.scratch, "instructions.md");
      await writeFile(instructions, `${INSTRUCTIONS_MARKER}\n`);
      const cliDriver = codexDriver({
        homesDir: path.join(bench.scratch, "homes"),
        instructionsFile: instructions,
        env: bench.env,
        wallTimeMs: 120_000,
      });
      expect((await cliDriver.preflight()).version).toMatch(/^codex-cli \d+\.\d+\.\d+$/);
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
        "Hello from Codex, through the gateway.",
      );

      const commands = sandboxed ? 4 : 3;
      const calls = ofKind(run.events, "tool_call");
      expect(calls.map((c) => c.tool)).toEqual(Array(commands).fill("command_execution"));
      expect(calls[0]?.input).toEqual({ command: expect.stringContaining("notes/hello.txt") });
      const results = ofKind(run.events, "tool_result");
      // Only the write outside the workspace fails.
      expect(results.map((r) => [r.callId, r.isError])).toEqual(
        calls.map((c, i) => [c.callId, i === 3]),
      );
      expect(results[2]?.output).toContain("command-ran");
      expect(ofKind(run.events, "message").map((m) => m.text)).toEqual([
        "I will add the notes file first.",
        "Done: notes/hello.txt created, README.md edited, command run.",
      ]);
      expect(
        ofKind(run.events, "file_change")
          .map((c) => `${c.change} ${c.path}`)
          .sort(),
      ).toEqual(["created made-by-command.txt", "created notes/hello.txt", "modified README.md"]);
      // Codex warns (as an error item, then carries on) about a model name it has no metadata for.
      expect(ofKind(run.events, "error").map((e) => e.message)).toEqual([
        expect.stringContaining("Model metadata for `sim-demo` not found"),
      ]);

      const metered = await metering(bench, run.runId);
      expect(metered.requests).toBe(commands + 1);
      expect(metered.rows.every((r) => r.status === 200 && r.protocol === "openai-responses")).toBe(
        true,
      );
      expect(bench.simulator.stats.requests).toBe(commands + 1);
      expect(metered.inputTokens).toBe(bench.simulator.stats.promptTokens);
      expect(metered.outputTokens).toBe(bench.simulator.stats.completionTokens);
      expect(usageOf(run.events)).toEqual({
        inputTokens: metered.inputTokens,
        outputTokens: metered.outputTokens,
      });

      expect(messagesText(bench.requests[0]!, ["system", "developer", "user"])).toContain(
        INSTRUCTIONS_MARKER,
      );
      expect(bench.trap.attempts).toEqual([]);

      expectOutsideWriteBlocked(run.events, sandboxed, {
        output: results[3]?.output,
        outside,
        agent: "codex (the codex agent)",
      });
    },
  );

  it("is stopped past max_steps, since Codex has no turn limit of its own", async () => {
    bench = await startAgentBench(() => ({
      toolCalls: [{ name: "exec_command", arguments: { cmd: "echo again" } }],
    }));
    const ws = await makeWorkspace(bench);
    const driver = codexDriver({ homesDir: path.join(bench.scratch, "homes"), env: bench.env });
    const run = await runDriver(bench, driver, { workspacePath: ws, prompt: "Loop.", maxSteps: 3 });
    expect(run.result.reason).toBe("max_steps");
    expect(run.result.summary).toMatch(/stopped after 3 model turns/);
    expect(ofKind(run.events, "tool_call").length).toBeGreaterThanOrEqual(3);
  });
});
