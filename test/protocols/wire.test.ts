import { describe, expect, it } from "vitest";
import {
  anthropicMessageEvents,
  anthropicMessagesWire,
  anthropicToChat,
  chatCompletionChunks,
  countTokens,
  encodeSSE,
  geminiWire,
  openAIChatWire,
  openAIResponsesWire,
  ProtocolError,
  parseAnthropicRequest,
  parseResponsesRequest,
  parseSSE,
  promptText,
  responsesEvents,
  responsesResponse,
  responsesToChat,
  type WireProtocol,
  wireProtocolForPath,
  wireProtocols,
} from "../../src/protocols/index.ts";

const usage = { prompt_tokens: 21, completion_tokens: 8, total_tokens: 29 };

function meter(wire: WireProtocol, sse: string) {
  const m = wire.createStreamMeter();
  for (const event of parseSSE(sse)) m.onEvent(event);
  return m.usage();
}

describe("anthropicMessagesWire", () => {
  const body = {
    model: "claude-sim",
    max_tokens: 300,
    system: "be brief",
    messages: [{ role: "user", content: "hello there" }],
    stream: true,
  };

  it("reads the request's facts", () => {
    expect(anthropicMessagesWire.path).toBe("/v1/messages");
    expect(anthropicMessagesWire.inspectRequest(body)).toEqual({
      model: "claude-sim",
      stream: true,
      estimatedInputTokens: countTokens(promptText(anthropicToChat(parseAnthropicRequest(body)))),
      maxOutputTokens: 300,
    });
    expect(() => anthropicMessagesWire.inspectRequest({ model: "m" })).toThrow(ProtocolError);
    expect(anthropicMessagesWire.upstreamBody(body)).toEqual(body);
  });

  it("meters usage from a JSON reply, cache reads and writes counted as input", () => {
    expect(
      anthropicMessagesWire.usageFromResponse({
        usage: {
          input_tokens: 10,
          output_tokens: 4,
          cache_read_input_tokens: 100,
          cache_creation_input_tokens: 5,
        },
      }),
    ).toEqual({ inputTokens: 115, outputTokens: 4, cachedInputTokens: 100 });
    expect(anthropicMessagesWire.usageFromResponse({ nope: 1 })).toBeUndefined();
    expect(anthropicMessagesWire.usageFromResponse(null)).toBeUndefined();
  });

  it("meters usage from message_start and the final message_delta", () => {
    const events = anthropicMessageEvents({
      id: "msg_1",
      model: "m",
      content: "hi there",
      toolCalls: [{ id: "toolu_1", name: "Bash", arguments: '{"command":"ls"}' }],
      usage,
    });
    const sse = events.map((e) => encodeSSE(e.data, e.event)).join("");
    expect(meter(anthropicMessagesWire, sse)).toEqual({
      inputTokens: 21,
      outputTokens: 8,
      cachedInputTokens: 0,
    });
    // A stream cut before message_delta shows only what message_start said.
    const cut = events
      .slice(0, 3)
      .map((e) => encodeSSE(e.data, e.event))
      .join("");
    expect(meter(anthropicMessagesWire, cut)?.inputTokens).toBe(21);
    expect(meter(anthropicMessagesWire, "data: {not json\n\n")).toBeUndefined();
  });

  it("takes the key from x-api-key or a Bearer token, and answers errors Anthropic-style", () => {
    expect(anthropicMessagesWire.apiKeyOf(new Headers({ "x-api-key": "sk-a" }))).toBe("sk-a");
    expect(anthropicMessagesWire.apiKeyOf(new Headers({ authorization: "Bearer tok" }))).toBe(
      "tok",
    );
    expect(anthropicMessagesWire.apiKeyOf(new Headers())).toBeUndefined();
    expect(anthropicMessagesWire.errorBody(401, "bad key", "invalid_key")).toEqual({
      type: "error",
      error: { type: "authentication_error", message: "bad key" },
    });
  });
});

describe("openAIResponsesWire", () => {
  const body = { model: "gpt-sim", input: "hello", max_output_tokens: 64 };

  it("reads the request's facts", () => {
    expect(openAIResponsesWire.path).toBe("/v1/responses");
    expect(openAIResponsesWire.inspectRequest(body)).toEqual({
      model: "gpt-sim",
      stream: false,
      estimatedInputTokens: countTokens(promptText(responsesToChat(parseResponsesRequest(body)))),
      maxOutputTokens: 64,
    });
    expect(() => openAIResponsesWire.inspectRequest({ input: "x" })).toThrow(ProtocolError);
  });

  it("meters usage from a JSON reply and from response.completed", () => {
    const reply = {
      id: "resp_1",
      model: "m",
      createdAt: 1,
      content: "done",
      toolCalls: [{ id: "call_1", name: "f", arguments: "{}" }],
      usage,
    };
    const expected = { inputTokens: 21, outputTokens: 8, cachedInputTokens: 0 };
    expect(openAIResponsesWire.usageFromResponse(responsesResponse(reply))).toEqual(expected);
    const sse = responsesEvents(reply)
      .map((e) => encodeSSE(e.data, e.event))
      .join("");
    expect(meter(openAIResponsesWire, sse)).toEqual(expected);
    expect(
      openAIResponsesWire.usageFromResponse({
        usage: { input_tokens: 9, output_tokens: 1, input_tokens_details: { cached_tokens: 4 } },
      }),
    ).toEqual({ inputTokens: 9, outputTokens: 1, cachedInputTokens: 4 });
  });

  it("takes a Bearer key and answers errors OpenAI-style", () => {
    expect(openAIResponsesWire.apiKeyOf(new Headers({ authorization: "Bearer sk-o" }))).toBe(
      "sk-o",
    );
    expect(openAIResponsesWire.apiKeyOf(new Headers({ "x-api-key": "sk-a" }))).toBeUndefined();
    expect(openAIResponsesWire.errorBody(429, "slow", "budget_exceeded")).toEqual({
      error: { message: "slow", type: "rate_limit_error", param: null, code: "budget_exceeded" },
    });
  });
});

describe("openAIChatWire", () => {
  it("meters a streamed reply from its include_usage chunk", () => {
    const sse = chatCompletionChunks({
      id: "c",
      model: "m",
      created: 1,
      content: "hi",
      usage,
      includeUsage: true,
    })
      .map((item) => encodeSSE(item))
      .join("");
    expect(meter(openAIChatWire, sse)).toEqual({
      inputTokens: 21,
      outputTokens: 8,
      cachedInputTokens: 0,
    });
  });
});

describe("wireProtocolForPath", () => {
  it("finds each protocol by its path, ignoring the query string", () => {
    expect(wireProtocols.map((w) => w.name)).toEqual([
      "openai-chat",
      "anthropic-messages",
      "openai-responses",
      "gemini",
    ]);
    expect(wireProtocolForPath("/v1/messages?beta=true")).toBe(anthropicMessagesWire);
    expect(wireProtocolForPath("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse")).toBe(
      geminiWire,
    );
    expect(wireProtocolForPath("/v1beta/models/gemini-2.5-pro:generateContent")).toBe(geminiWire);
    expect(wireProtocolForPath("/v1beta/models/gemini-2.5-pro:embedContent")).toBeUndefined();
    expect(wireProtocolForPath("/v1/responses")).toBe(openAIResponsesWire);
    expect(wireProtocolForPath("/v1/chat/completions")).toBe(openAIChatWire);
    expect(wireProtocolForPath("/v1/embeddings")).toBeUndefined();
  });
});
