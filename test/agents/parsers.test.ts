import { describe, expect, it } from "vitest";
import { JsonLines, type OutputLine } from "../../src/agents/cli/json-lines.ts";
import {
  type AgentEvent,
  ClaudeCodeParser,
  type CliOutputParser,
  CodexParser,
  OpenCodeParser,
} from "../../src/agents/index.ts";

function feed(parser: CliOutputParser, events: unknown[]) {
  const out: AgentEvent[] = [];
  let turns = 0;
  for (const event of events) {
    parser.accept(event as Record<string, unknown>, {
      emit: (e) => out.push(e),
      turn: () => turns++,
    });
  }
  return { events: out, turns, verdict: parser.verdict() };
}

// Shapes a confused or hostile CLI could print: right type names, wrong everything else.
const HOSTILE: unknown[] = [
  {},
  { type: 5 },
  { type: "assistant" },
  { type: "assistant", message: [] },
  { type: "assistant", message: { id: {}, content: "text" } },
  {
    type: "assistant",
    message: { content: [1, null, { type: "text", text: 3 }, { type: "tool_use" }] },
  },
  { type: "user", message: { content: [{ type: "tool_result", content: [{ type: "text" }, 7] }] } },
  {
    type: "result",
    usage: { input_tokens: -5, output_tokens: "9", cache_read_input_tokens: Number.NaN },
  },
  { type: "item.started", item: "x" },
  { type: "item.started", item: { type: "command_execution", command: ["rm"] } },
  { type: "item.completed", item: { type: "agent_message", text: null } },
  { type: "item.completed", item: { type: "command_execution", exit_code: "0" } },
  { type: "item.completed", item: { type: "mcp_tool_call", tool: {} } },
  { type: "turn.completed", usage: null },
  { type: "turn.failed", error: "boom" },
  { type: "error" },
  { type: "text", part: null },
  { type: "tool_use", part: { state: { status: "error", error: {} } } },
  { type: "step_finish", part: { tokens: { input: Number.POSITIVE_INFINITY, cache: "x" } } },
  { type: "error", error: { data: null } },
  { type: "__proto__", part: { __proto__: { polluted: true } } },
];

describe("parsers read untrusted events without throwing", () => {
  for (const Parser of [ClaudeCodeParser, CodexParser, OpenCodeParser]) {
    it(`${Parser.name} survives hostile shapes and emits only well-formed events`, () => {
      const { events } = feed(new Parser(), HOSTILE);
      for (const event of events) {
        if (event.kind === "usage") {
          expect(Number.isFinite(event.inputTokens) && event.inputTokens >= 0).toBe(true);
          expect(Number.isFinite(event.outputTokens) && event.outputTokens >= 0).toBe(true);
        }
        if (event.kind === "tool_call" || event.kind === "tool_result") {
          expect(typeof event.callId).toBe("string");
          expect(typeof event.tool).toBe("string");
        }
        if (event.kind === "message" || event.kind === "error") {
          expect(typeof (event.kind === "message" ? event.text : event.message)).toBe("string");
        }
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  }

  it("Claude Code: usage counts cache reads and writes as input, like the gateway", () => {
    const { events, verdict } = feed(new ClaudeCodeParser(), [
      {
        type: "result",
        subtype: "success",
        is_error: false,
        result: "ok",
        usage: {
          input_tokens: 10,
          cache_creation_input_tokens: 5,
          cache_read_input_tokens: 100,
          output_tokens: 7,
        },
      },
    ]);
    expect(events).toEqual([{ kind: "usage", inputTokens: 115, outputTokens: 7 }]);
    expect(verdict).toEqual({ reason: "completed", summary: "ok" });
  });

  it("Claude Code: one turn per model message, however many lines it spans", () => {
    const line = (id: string, block: object) => ({
      type: "assistant",
      message: { id, content: [block] },
    });
    const { turns } = feed(new ClaudeCodeParser(), [
      line("m1", { type: "text", text: "a" }),
      line("m1", { type: "tool_use", id: "t1", name: "Bash", input: {} }),
      line("m2", { type: "text", text: "b" }),
    ]);
    expect(turns).toBe(2);
  });

  it("Codex: a failed turn is an error with Codex's reason", () => {
    const { verdict } = feed(new CodexParser(), [
      { type: "error", message: "stream disconnected" },
      { type: "turn.failed", error: { message: "unexpected status 403: budget exhausted" } },
    ]);
    expect(verdict).toEqual({
      reason: "error",
      summary: "Codex failed: unexpected status 403: budget exhausted",
    });
  });

  it("OpenCode: no steps means no verdict; an error event fails the run", () => {
    expect(
      feed(new OpenCodeParser(), [{ type: "text", part: { text: "hi" } }]).verdict,
    ).toBeUndefined();
    expect(
      feed(new OpenCodeParser(), [
        { type: "step_start" },
        { type: "error", error: { name: "APIError", data: { message: "Cannot connect to API" } } },
      ]).verdict,
    ).toEqual({ reason: "error", summary: "OpenCode failed: Cannot connect to API" });
  });
});

describe("JsonLines", () => {
  function collect(chunks: (string | Buffer)[], maxLineBytes?: number): OutputLine[] {
    const lines: OutputLine[] = [];
    const reader = new JsonLines((l) => lines.push(l), maxLineBytes);
    for (const chunk of chunks) reader.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    reader.end();
    return lines;
  }

  it("joins lines split across chunks, including inside a multi-byte character", () => {
    const text = Buffer.from('{"text":"héllo ✓"}\n{"n":1}');
    const lines = collect([text.subarray(0, 12), text.subarray(12, 13), text.subarray(13)]);
    expect(lines).toEqual([
      { kind: "event", value: { text: "héllo ✓" } },
      { kind: "event", value: { n: 1 } },
    ]);
  });

  it("skips an over-long line without holding it, and keeps going", () => {
    const lines = collect([`{"a":"${"x".repeat(50)}`, `${"y".repeat(50)}"}\n{"ok":true}\n`], 64);
    expect(lines).toEqual([
      { kind: "oversized", bytes: 108 },
      { kind: "event", value: { ok: true } },
    ]);
  });

  it("turns control characters in garbage previews into '?'", () => {
    expect(collect(["\u001b[31mred\u0007\n"])).toEqual([{ kind: "garbage", preview: "?[31mred?" }]);
  });
});
