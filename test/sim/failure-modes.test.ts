import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import type { ChatRequest } from "../../src/protocols/index.ts";
import {
  ESCAPE_COMMANDS,
  ESCAPE_READS,
  type FailureMode,
  type Policy,
  type PolicyToolCall,
  type RunningSimulator,
  SimulatorError,
  startSimulator,
  withFailureModes,
} from "../../src/sim/index.ts";

let sim: RunningSimulator | undefined;

afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const ctx = { requestIndex: 0 };

// A well-behaved agent model: list, write a file, then finish.
const inner: Policy = (request) => {
  const turn = request.messages.filter((m) => m.role === "assistant").length;
  if (turn === 0) return { toolCalls: [{ name: "list_files", arguments: { dir: "." } }] };
  if (turn === 1) {
    return {
      toolCalls: [
        { name: "write_file", arguments: { path: "src/a.ts", content: "export const a = 1;\n" } },
      ],
    };
  }
  return { content: "done" };
};

function conversation(prompt: string, turns: number, tools: string[] = []): ChatRequest {
  const messages: ChatRequest["messages"] = [{ role: "user", content: prompt }];
  for (let t = 0; t < turns; t++) {
    messages.push({
      role: "assistant",
      content: null,
      tool_calls: [
        {
          id: `c${t}`,
          type: "function",
          function: { name: "list_files", arguments: '{"dir":"."}' },
        },
      ],
    });
    messages.push({ role: "tool", tool_call_id: `c${t}`, content: "a.ts" });
  }
  return {
    model: "m",
    messages,
    tools: tools.map((name) => ({
      type: "function",
      function: {
        name,
        parameters: {
          type: "object",
          properties:
            name === "Read"
              ? { file_path: { type: "string" }, limit: { type: "number" } }
              : { command: { type: "string" }, timeout: { type: "number" } },
        },
      },
    })),
  };
}

const NETWORK = /:\/\/|\b\d{1,3}(\.\d{1,3}){3}\b|@|curl|wget|\bnc\b|ssh\s/;

describe("withFailureModes", () => {
  it("escapes with the agent's own tools and argument names, never toward the network", async () => {
    const fired: FailureMode[] = [];
    const policy = withFailureModes(inner, {
      rates: { escape: 1 },
      onFailure: (mode) => fired.push(mode),
    });
    const calls: PolicyToolCall[] = [];
    for (let i = 0; i < 40; i++) {
      const reply = await policy(conversation(`task ${i}`, 0, ["Read", "Bash"]), ctx);
      calls.push(...(reply.toolCalls ?? []));
    }
    expect(fired).toHaveLength(40);
    const reads = calls
      .filter((c) => c.name === "Read")
      .map((c) => (c.arguments as { file_path: string }).file_path);
    const commands = calls
      .filter((c) => c.name === "Bash")
      .map((c) => (c.arguments as { command: string }).command);
    expect(reads.length + commands.length).toBe(40);
    expect(reads.length).toBeGreaterThan(0);
    expect(commands.length).toBeGreaterThan(0);
    for (const path of reads) expect(ESCAPE_READS).toContain(path);
    for (const command of commands) expect(ESCAPE_COMMANDS).toContain(command);
    for (const value of [...reads, ...commands]) expect(value).not.toMatch(NETWORK);
    for (const value of [...ESCAPE_READS, ...ESCAPE_COMMANDS]) expect(value).not.toMatch(NETWORK);
  });

  it("falls back to the built-in agent's tool names when none are offered", async () => {
    const policy = withFailureModes(inner, { rates: { escape: 1 } });
    const names = new Set<string>();
    for (let i = 0; i < 20; i++) {
      for (const call of (await policy(conversation(`t${i}`, 0), ctx)).toolCalls ?? []) {
        names.add(call.name);
        expect(Object.keys(call.arguments as object)).toEqual([
          call.name === "read_file" ? "path" : "command",
        ]);
      }
    }
    expect([...names].sort()).toEqual(["read_file", "run_command"]);
  });

  it("loops: from the second turn on, the same tool call again and again", async () => {
    const policy = withFailureModes(inner, { rates: { loop: 1 } });
    const first = await policy(conversation("fix it", 0), ctx);
    expect(first.toolCalls?.[0]?.name).toBe("list_files");
    for (const turns of [1, 2, 7]) {
      const reply = await policy(conversation("fix it", turns), ctx);
      expect(reply.toolCalls).toEqual([{ name: "list_files", arguments: '{"dir":"."}' }]);
    }
  });

  it("breaks the inner policy's file writes and leaves other replies alone", async () => {
    const policy = withFailureModes(inner, { rates: { broken_patch: 1 } });
    const write = await policy(conversation("fix it", 1), ctx);
    const content = (write.toolCalls![0]!.arguments as { content: string }).content;
    expect(content).toContain("<<<<<<< broken patch");
    expect(content).not.toBe("export const a = 1;\n");
    expect(await policy(conversation("fix it", 0), ctx)).toEqual(
      await inner(conversation("fix it", 0), ctx),
    );
  });

  it("draws per conversation and turn from the seed: reproducible, and the rate is a share", async () => {
    const run = async (seed: number) => {
      const policy = withFailureModes(inner, { seed, rates: { stall: 0.5 }, stallMs: 5 });
      const stalled: boolean[] = [];
      for (let i = 0; i < 60; i++) {
        stalled.push((await policy(conversation(`order ${i}`, 0), ctx)).delayMs === 5);
      }
      return stalled;
    };
    const once = await run(3);
    expect(await run(3)).toEqual(once);
    const share = once.filter(Boolean).length / once.length;
    expect(share).toBeGreaterThan(0.3);
    expect(share).toBeLessThan(0.7);
  });

  it("refuses rates outside [0, 1]", () => {
    expect(() => withFailureModes(inner, { rates: { stall: 2 } })).toThrow(SimulatorError);
    expect(() => withFailureModes(inner, { rates: { stall: 0.7, escape: 0.7 } })).toThrow(
      /exceed 1/,
    );
  });
});

describe("failure modes through the simulator", () => {
  it("stalls a reply by stallMs", async () => {
    sim = await startSimulator({
      policy: withFailureModes(inner, { rates: { stall: 1 }, stallMs: 250 }),
    });
    const client = new OpenAI({ apiKey: "k", baseURL: sim.url, maxRetries: 0 });
    const started = Date.now();
    await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
  });

  it("sends a 2 MiB output whole, with usage counted from it", async () => {
    sim = await startSimulator({ policy: withFailureModes(inner, { rates: { huge_output: 1 } }) });
    const client = new OpenAI({ apiKey: "k", baseURL: sim.url, maxRetries: 0 });
    const reply = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
    });
    const text = reply.choices[0]?.message.content ?? "";
    expect(text.length).toBe(2 * 1024 * 1024);
    expect(reply.usage?.completion_tokens).toBe((2 * 1024 * 1024) / 4);
    expect(sim.stats.completionTokens).toBe(reply.usage?.completion_tokens);
  });

  it("cuts a huge streamed output at the client's max_tokens, as Claude Code would see it", async () => {
    sim = await startSimulator({ policy: withFailureModes(inner, { rates: { huge_output: 1 } }) });
    const client = new Anthropic({ apiKey: "k", baseURL: sim.rootUrl, maxRetries: 0 });
    const message = await client.messages
      .stream({
        model: "claude-sim",
        max_tokens: 32_000,
        messages: [{ role: "user", content: "x" }],
      })
      .finalMessage();
    expect(message.stop_reason).toBe("max_tokens");
    expect(message.usage.output_tokens).toBe(32_000);
    expect(message.content[0]?.type === "text" && message.content[0].text.length).toBe(128_000);
  });
});
