import { describe, expect, it } from "vitest";
import {
  assembleChunks,
  type ChatCompletionChunk,
  chatCompletionChunks,
  chatCompletionResponse,
  openAIErrorBody,
  ProtocolError,
  parseChatRequest,
  splitIntoPieces,
} from "../../src/protocols/index.ts";
import { expectInvalidRequest } from "../support/protocols.ts";

function expectInvalid(body: unknown, param: string, fragment: string): void {
  expectInvalidRequest(parseChatRequest, body, param, fragment);
}

const user = { role: "user", content: "hi" };

describe("parseChatRequest", () => {
  it("accepts a full tool-calling conversation and keeps unknown fields", () => {
    const parsed = parseChatRequest({
      model: "m",
      user: "someone",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: [{ type: "text", text: "read it" }] },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "read", arguments: "{}" } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "file body" },
      ],
      tools: [{ type: "function", function: { name: "read", parameters: { type: "object" } } }],
      tool_choice: "auto",
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 100,
      temperature: 0.2,
    });
    expect(parsed.messages).toHaveLength(4);
    expect(parsed.stream_options?.include_usage).toBe(true);
    expect((parsed as Record<string, unknown>).user).toBe("someone");
  });

  it("names the missing field", () => {
    expectInvalid({ messages: [user] }, "model", "required");
    expectInvalid(
      { model: "m", messages: [{ role: "tool", content: "x" }] },
      "messages[0].tool_call_id",
      "required",
    );
  });

  it("names the field with a wrong value", () => {
    expectInvalid({ model: "m", messages: [] }, "messages", ">=1");
    expectInvalid(
      { model: "m", messages: [{ role: "robot", content: "x" }] },
      "messages[0].role",
      "tool",
    );
    expectInvalid(
      { model: "m", messages: [{ role: "user", content: 5 }] },
      "messages[0].content",
      "string",
    );
    expectInvalid({ model: "m", messages: [user], temperature: 7 }, "temperature", "<=2");
    expectInvalid({ model: "m", messages: [user], tool_choice: "maybe" }, "tool_choice", "auto");
    expectInvalid(
      { model: "m", messages: [{ role: "user", content: [{ type: "text" }] }] },
      "messages[0].content[0].text",
      "text",
    );
  });

  it("rejects a body that is not an object", () => {
    expect(() => parseChatRequest("hello")).toThrow(ProtocolError);
  });
});

describe("openAIErrorBody", () => {
  it("produces the provider error shape with a type derived from the status", () => {
    expect(openAIErrorBody(400, "bad", undefined, "invalid_request", "model")).toEqual({
      error: {
        message: "bad",
        type: "invalid_request_error",
        param: "model",
        code: "invalid_request",
      },
    });
    expect(openAIErrorBody(429, "slow down").error.type).toBe("rate_limit_error");
    expect(openAIErrorBody(503, "down", "overloaded_error").error.type).toBe("overloaded_error");
  });
});

const reply = {
  id: "chatcmpl-1",
  model: "sim",
  created: 1_700_000_000,
  content: "Here is a fairly long answer that should be streamed in several separate pieces.",
  toolCalls: [
    {
      id: "call_a",
      name: "write_file",
      arguments: JSON.stringify({ path: "a.ts", content: "x".repeat(40) }),
    },
    { id: "call_b", name: "run_command", arguments: '{"command":"npm test"}' },
  ],
  usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 },
};

describe("chat completion builders", () => {
  it("streamed chunks reassemble into the non-streamed response", () => {
    const items = chatCompletionChunks({ ...reply, includeUsage: true });
    const whole = chatCompletionResponse(reply).choices[0];
    const assembled = assembleChunks(items);
    expect(assembled.content).toBe(whole?.message.content);
    expect(assembled.toolCalls).toEqual(
      whole?.message.tool_calls?.map((c) => ({
        id: c.id,
        name: c.function.name,
        arguments: c.function.arguments,
      })),
    );
    expect(assembled.finishReason).toBe("tool_calls");
    expect(whole?.finish_reason).toBe("tool_calls");
    expect(assembled.usage).toEqual(reply.usage);
  });

  it("streams in the OpenAI order: role, content pieces, tool call pieces, finish, usage, DONE", () => {
    const items = chatCompletionChunks({ ...reply, includeUsage: true });
    expect(items.at(-1)).toBe("[DONE]");
    const chunks = items.slice(0, -1) as ChatCompletionChunk[];
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    const contentDeltas = chunks.filter((c) => c.choices[0]?.delta.content);
    expect(contentDeltas.length).toBeGreaterThan(2);
    const toolDeltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(toolDeltas[0]).toMatchObject({
      index: 0,
      id: "call_a",
      function: { name: "write_file" },
    });
    expect(toolDeltas.filter((d) => d.index === 0).length).toBeGreaterThan(2);
    const usageChunk = chunks.at(-1);
    expect(usageChunk?.choices).toEqual([]);
    expect(usageChunk?.usage).toEqual(reply.usage);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("tool_calls");
  });

  it("omits the usage chunk unless asked and finishes with stop without tool calls", () => {
    const items = chatCompletionChunks({ ...reply, toolCalls: [] });
    expect(items.some((i) => i !== "[DONE]" && i.usage)).toBe(false);
    expect(assembleChunks(items).finishReason).toBe("stop");
    expect(
      chatCompletionResponse({ ...reply, toolCalls: [] }).choices[0]?.message,
    ).not.toHaveProperty("tool_calls");
  });

  it("splits text into pieces that concatenate back", () => {
    const text = "  one two\n three   four five six seven eight nine ten ";
    const pieces = splitIntoPieces(text, 4);
    expect(pieces.length).toBeLessThanOrEqual(4);
    expect(pieces.join("")).toBe(text);
  });
});
