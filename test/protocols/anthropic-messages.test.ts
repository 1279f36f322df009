import { describe, expect, it } from "vitest";
import {
  anthropicCountTokens,
  anthropicErrorBody,
  anthropicMessageEvents,
  anthropicMessageResponse,
  anthropicToChat,
  assembleAnthropicEvents,
  countTokens,
  encodeSSE,
  parseAnthropicCountTokensRequest,
  parseAnthropicRequest,
  parseSSE,
  promptText,
  usageFor,
} from "../../src/protocols/index.ts";
import { expectInvalidRequest } from "../support/protocols.ts";

function expectInvalid(body: unknown, param: string, fragment: string): void {
  expectInvalidRequest(parseAnthropicRequest, body, param, fragment);
}

const conversation = {
  model: "claude-sim",
  max_tokens: 1024,
  system: [
    { type: "text", text: "You are a coding agent.", cache_control: { type: "ephemeral" } },
    { type: "text", text: "cwd: /work" },
  ],
  metadata: { user_id: "run-1" },
  context_management: { edits: [] },
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "Fix the bug" },
        { type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } },
      ],
    },
    {
      role: "assistant",
      content: [
        { type: "thinking", thinking: "hmm", signature: "sig" },
        { type: "text", text: "Reading it." },
        { type: "tool_use", id: "toolu_1", name: "Read", input: { file_path: "a.ts" } },
        { type: "tool_use", id: "toolu_2", name: "Bash", input: { command: "ls" } },
      ],
    },
    {
      role: "user",
      content: [
        { type: "tool_result", tool_use_id: "toolu_1", content: "export const a = 1;" },
        {
          type: "tool_result",
          tool_use_id: "toolu_2",
          content: [{ type: "text", text: "a.ts" }],
          is_error: false,
        },
        { type: "text", text: "<system-reminder>keep going</system-reminder>" },
      ],
    },
  ],
  tools: [
    {
      name: "Read",
      description: "Read a file",
      input_schema: { type: "object", properties: { file_path: { type: "string" } } },
    },
    { type: "web_search_20250305", name: "web_search", max_uses: 3 },
  ],
  tool_choice: { type: "any" },
  stream: true,
};

describe("parseAnthropicRequest and anthropicToChat", () => {
  it("accepts a Claude Code style conversation, unknown blocks and extra fields included", () => {
    const parsed = parseAnthropicRequest(conversation);
    expect((parsed as Record<string, unknown>).context_management).toEqual({ edits: [] });
    const chat = anthropicToChat(parsed);
    expect(chat.model).toBe("claude-sim");
    expect(chat.stream).toBe(true);
    expect(chat.max_tokens).toBe(1024);
    expect(chat.tool_choice).toBe("required");
    expect(chat.messages.map((m) => m.role)).toEqual([
      "system",
      "user",
      "assistant",
      "tool",
      "tool",
      "user",
    ]);
    expect(chat.messages[0]?.content).toBe("You are a coding agent.\ncwd: /work");
    const assistant = chat.messages[2];
    expect(assistant?.role === "assistant" && assistant.content).toBe("Reading it.");
    expect(assistant?.role === "assistant" && assistant.tool_calls).toEqual([
      {
        id: "toolu_1",
        type: "function",
        function: { name: "Read", arguments: '{"file_path":"a.ts"}' },
      },
      {
        id: "toolu_2",
        type: "function",
        function: { name: "Bash", arguments: '{"command":"ls"}' },
      },
    ]);
    expect(chat.messages[3]).toEqual({
      role: "tool",
      tool_call_id: "toolu_1",
      content: "export const a = 1;",
    });
    expect(chat.messages[4]).toMatchObject({ tool_call_id: "toolu_2", content: "a.ts" });
    expect(chat.tools?.map((t) => t.function.name)).toEqual(["Read", "web_search"]);
    expect(chat.tools?.[0]?.function.parameters).toMatchObject({ type: "object" });
  });

  it("maps string content and every tool_choice", () => {
    const base = { model: "m", max_tokens: 5, messages: [{ role: "user", content: "hi" }] };
    expect(anthropicToChat(parseAnthropicRequest(base)).messages).toEqual([
      { role: "user", content: "hi" },
    ]);
    const choice = (tool_choice: unknown) =>
      anthropicToChat(parseAnthropicRequest({ ...base, tool_choice })).tool_choice;
    expect(choice({ type: "auto" })).toBe("auto");
    expect(choice({ type: "none" })).toBe("none");
    expect(choice({ type: "tool", name: "Read" })).toEqual({
      type: "function",
      function: { name: "Read" },
    });
  });

  it("keeps a mid-conversation system message (Claude Code 2.1) as a system message in place", () => {
    const chat = anthropicToChat(
      parseAnthropicRequest({
        model: "m",
        max_tokens: 5,
        system: "top",
        messages: [
          { role: "user", content: "hi" },
          { role: "system", content: [{ type: "text", text: "Available agent types" }] },
          { role: "assistant", content: "ok" },
        ],
      }),
    );
    expect(chat.messages.map((m) => [m.role, m.content])).toEqual([
      ["system", "top"],
      ["user", "hi"],
      ["system", "Available agent types"],
      ["assistant", "ok"],
    ]);
  });

  it("names the missing or wrong field", () => {
    const user = { role: "user", content: "hi" };
    expectInvalid({ model: "m", messages: [user] }, "max_tokens", "required");
    expectInvalid({ model: "m", max_tokens: 0, messages: [user] }, "max_tokens", ">0");
    expectInvalid({ model: "m", max_tokens: 5, messages: [] }, "messages", ">=1");
    expectInvalid(
      { model: "m", max_tokens: 5, messages: [{ role: "tool", content: "x" }] },
      "messages[0].role",
      "assistant",
    );
    expectInvalid(
      {
        model: "m",
        max_tokens: 5,
        messages: [{ role: "assistant", content: [{ type: "tool_use", name: "x", input: {} }] }],
      },
      "messages[0].content[0].id",
      "required",
    );
    expectInvalid(
      {
        model: "m",
        max_tokens: 5,
        messages: [
          { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: 5 }] },
        ],
      },
      "messages[0].content[0].content",
      "string",
    );
    expectInvalid(
      { model: "m", max_tokens: 5, messages: [{ role: "user", content: [{ text: "x" }] }] },
      "messages[0].content[0].type",
      "type",
    );
    expectInvalid(
      { model: "m", max_tokens: 5, messages: [user], tools: [{ name: "Read" }] },
      "tools[0].input_schema",
      "custom tools",
    );
    expectInvalid(
      { model: "m", max_tokens: 5, messages: [user], tool_choice: { type: "maybe" } },
      "tool_choice.type",
      "auto",
    );
    expectInvalid(
      { model: "m", max_tokens: 5, messages: [user], system: 7 },
      "system",
      "text blocks",
    );
  });

  it("counts tokens exactly as a reply's usage reports input", () => {
    const body = { ...conversation, max_tokens: undefined, stream: undefined };
    const count = anthropicCountTokens(parseAnthropicCountTokensRequest(body));
    const chat = anthropicToChat(parseAnthropicRequest(conversation));
    expect(count.input_tokens).toBe(countTokens(promptText(chat)));
    expect(count.input_tokens).toBe(usageFor(chat, { content: "x" }).prompt_tokens);
    expect(count.input_tokens).toBeGreaterThan(20);
  });
});

const reply = {
  id: "msg_1",
  model: "claude-sim",
  content: "Let me run the tests now.",
  toolCalls: [{ id: "toolu_9", name: "Bash", arguments: '{"command":"npm test"}' }],
  usage: { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 },
};

describe("Anthropic replies", () => {
  it("builds a non-streaming message with text and tool_use blocks", () => {
    expect(anthropicMessageResponse(reply)).toEqual({
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-sim",
      content: [
        { type: "text", text: "Let me run the tests now." },
        { type: "tool_use", id: "toolu_9", name: "Bash", input: { command: "npm test" } },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: {
        input_tokens: 40,
        output_tokens: 12,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
      },
    });
  });

  it("says end_turn, max_tokens, and passes malformed tool input through as the raw string", () => {
    const textOnly = { ...reply, toolCalls: [] };
    expect(anthropicMessageResponse(textOnly).stop_reason).toBe("end_turn");
    expect(anthropicMessageResponse({ ...textOnly, finishReason: "length" }).stop_reason).toBe(
      "max_tokens",
    );
    const broken = anthropicMessageResponse({
      ...reply,
      toolCalls: [{ id: "toolu_1", name: "Bash", arguments: '{"command": ' }],
    });
    expect(broken.content[1]).toMatchObject({ type: "tool_use", input: '{"command": ' });
  });

  it("streams the event sequence Claude Code accepts, which folds back into the same reply", () => {
    const events = anthropicMessageEvents(reply);
    const names = events.map((e) => e.event);
    expect(names[0]).toBe("message_start");
    expect(names.slice(-2)).toEqual(["message_delta", "message_stop"]);
    expect(events.every((e) => e.event === e.data.type)).toBe(true);
    expect(names.filter((n) => n === "content_block_start")).toHaveLength(2);
    expect(names.filter((n) => n === "content_block_stop")).toHaveLength(2);
    const toolStart = events.find((e) => e.event === "content_block_start" && e.data.index === 1);
    expect(toolStart?.data.content_block).toEqual({
      type: "tool_use",
      id: "toolu_9",
      name: "Bash",
      input: {},
    });
    const jsonDeltas = events.filter(
      (e) => (e.data.delta as { type?: string } | undefined)?.type === "input_json_delta",
    );
    expect(jsonDeltas.length).toBeGreaterThan(2);
    const wire = events.map((e) => encodeSSE(e.data, e.event)).join("");
    expect(wire).toContain("event: message_start\ndata: {");
    const assembled = assembleAnthropicEvents(parseSSE(wire));
    expect(assembled.content).toBe(reply.content);
    expect(assembled.toolCalls).toEqual(reply.toolCalls);
    expect(assembled.stopReason).toBe("tool_use");
    expect(assembled.usage?.input_tokens).toBe(40);
    expect(assembled.usage?.output_tokens).toBe(12);
    const delta = events.at(-2)?.data;
    expect(delta).toEqual({
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { output_tokens: 12 },
    });
  });

  it("has the provider's error body", () => {
    expect(anthropicErrorBody(429, "slow down")).toEqual({
      type: "error",
      error: { type: "rate_limit_error", message: "slow down" },
    });
    expect(anthropicErrorBody(401, "no").error.type).toBe("authentication_error");
    expect(anthropicErrorBody(529, "busy").error.type).toBe("overloaded_error");
    expect(anthropicErrorBody(500, "oops").error.type).toBe("api_error");
    expect(anthropicErrorBody(400, "bad").error.type).toBe("invalid_request_error");
  });
});
