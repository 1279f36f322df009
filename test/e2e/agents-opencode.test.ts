import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { locateCli, openCodeDriver, openCodeSpec } from "../../src/agents/index.ts";
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

// Real OpenCode, against the simulator, through the gateway's Chat Completions. opencode-ai is not
// a devDependency (its lockfile cannot pass `npm ci` from this registry: see docs/agents.md), so
// this runs where OpenCode is installed (`npm install -E --no-save opencode-ai`, or on PATH).
const installed = await locateCli(openCodeSpec).catch(() => undefined);
let bench: AgentBench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

const INSTRUCTIONS_MARKER = "Factory rule 7: always answer in plain English.";

function script(ws: string) {
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
      {
        name: "report",
        expect: { tool_result_contains: "command-ran" },
        reply: "Done: notes/hello.txt created, README.md edited, command run.",
      },
    ],
  });
}

describe.skipIf(!installed)("the OpenCode driver", () => {
  it("creates and edits files and runs a command through the gateway, with every token metered", async () => {
    let ws = "";
    bench = await startAgentBench((request, ctx) => scenarioPolicy(script(ws))(request, ctx));
    ws = await makeWorkspace(bench);
    const instructions = path.join(bench.scratch, "instructions.md");
    await writeFile(instructions, `${INSTRUCTIONS_MARKER}\n`);
    const driver = openCodeDriver({
      homesDir: path.join(bench.scratch, "homes"),
      instructionsFile: instructions,
      env: bench.env,
      wallTimeMs: 120_000,
    });
    expect((await driver.preflight()).version).toMatch(/^\d+\.\d+\.\d+$/);

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
    expect(calls.map((c) => c.tool)).toEqual(["write", "read", "edit", "bash"]);
    const results = ofKind(run.events, "tool_result");
    expect(results.map((r) => [r.callId, r.tool, r.isError])).toEqual(
      calls.map((c) => [c.callId, c.tool, false]),
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

    const metered = await metering(bench, run.runId);
    expect(metered.requests).toBe(5);
    expect(metered.rows.every((r) => r.status === 200 && r.protocol === "openai-chat")).toBe(true);
    expect(bench.simulator.stats.requests).toBe(5);
    expect(metered.inputTokens).toBe(bench.simulator.stats.promptTokens);
    expect(metered.outputTokens).toBe(bench.simulator.stats.completionTokens);
    expect(usageOf(run.events)).toEqual({
      inputTokens: metered.inputTokens,
      outputTokens: metered.outputTokens,
    });

    expect(messagesText(bench.requests[0]!, ["system", "user"])).toContain(INSTRUCTIONS_MARKER);
    expect(bench.trap.attempts).toEqual([]);
  });
});
