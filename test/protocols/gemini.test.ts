import { describe, expect, it } from "vitest";
import {
  countTokens,
  encodeSSE,
  geminiCallOf,
  geminiKey,
  geminiResponse,
  geminiStreamChunks,
  geminiToChat,
  geminiWire,
  ProtocolError,
  parseGeminiRequest,
  parseSSE,
  promptText,
} from "../../src/protocols/index.ts";

const usage = { prompt_tokens: 21, completion_tokens: 8, total_tokens: 29 };
const STREAM = "/v1beta/models/gemini-2.5-pro:streamGenerateContent";

// A second request of a session, as Gemini CLI sends it (trimmed): a function call and its response.
const body = {
  systemInstruction: { role: "user", parts: [{ text: "You are an agent." }] },
  contents: [
    { role: "user", parts: [{ text: "<session_context>" }, { text: "Add notes." }] },
    {
      role: "model",
      parts: [
        { text: "thinking...", thought: true },
        { text: "I will write it." },
        {
          functionCall: { id: "call_1", name: "write_file", args: { file_path: "a.txt" } },
          thoughtSignature: "c2ln",
        },
      ],
    },
    {
      role: "user",
      parts: [
        {
          functionResponse: {
            id: "call_1",
            name: "write_file",
            response: { output: "Wrote a.txt" },
          },
        },
      ],
    },
  ],
  tools: [
    {
      functionDeclarations: [
        {
          name: "write_file",
          description: "Writes a file",
          parametersJsonSchema: { type: "object", properties: { file_path: { type: "string" } } },
        },
      ],
    },
  ],
  generationConfig: { temperature: 1, maxOutputTokens: 500, thinkingConfig: {} },
};

describe("the Gemini API request", () => {
  it("reads the model and the action from the path, not the body", () => {
    expect(geminiCallOf(`${STREAM}?alt=sse`)).toEqual({
      model: "gemini-2.5-pro",
      action: "streamGenerateContent",
      stream: true,
    });
    expect(geminiCallOf("/v1beta/models/sim-demo:generateContent")).toMatchObject({
      model: "sim-demo",
      stream: false,
    });
    expect(geminiCallOf("/v1beta/models/sim-demo:countTokens")).toBeUndefined();
    expect(geminiCallOf("/v1/chat/completions")).toBeUndefined();
  });

  it("converts to the neutral form: one assistant message per model turn, tool results as tool messages", () => {
    const chat = geminiToChat(parseGeminiRequest(body), geminiCallOf(STREAM)!);
    expect(chat).toEqual({
      model: "gemini-2.5-pro",
      stream: true,
      max_completion_tokens: 500,
      temperature: 1,
      messages: [
        { role: "system", content: "You are an agent." },
        { role: "user", content: "<session_context>Add notes." },
        {
          role: "assistant",
          content: "I will write it.",
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "write_file", arguments: '{"file_path":"a.txt"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "Wrote a.txt" },
      ],
      tools: [
        {
          type: "function",
          function: {
            name: "write_file",
            description: "Writes a file",
            parameters: { type: "object", properties: { file_path: { type: "string" } } },
          },
        },
      ],
    });
  });

  it("refuses a body it cannot serve, naming the field", () => {
    expect(() => parseGeminiRequest({ contents: [] })).toThrow(ProtocolError);
    expect(() =>
      parseGeminiRequest({ contents: [{ role: "user", parts: [{ text: 3 }] }] }),
    ).toThrow(/contents\[0\]\.parts\[0\]\.text/);
    expect(() => geminiWire.inspectRequest(body, "/v1beta/models/x:embedContent")).toThrow(
      ProtocolError,
    );
  });

  it("gives the gateway the facts, the key (header or ?key=) and an upstream path without the key", () => {
    const facts = geminiWire.inspectRequest(body, STREAM);
    const chat = geminiToChat(parseGeminiRequest(body), geminiCallOf(STREAM)!);
    expect(facts).toEqual({
      model: "gemini-2.5-pro",
      stream: true,
      estimatedInputTokens: countTokens(promptText(chat)),
      maxOutputTokens: 500,
    });
    const url = new URL(`http://gw${STREAM}?alt=sse&key=nsk-secret`);
    expect(geminiKey(new Headers({ "x-goog-api-key": "nsk-h" }), url)).toBe("nsk-h");
    expect(geminiKey(new Headers(), url)).toBe("nsk-secret");
    expect(geminiKey(new Headers())).toBeUndefined();
    expect(geminiWire.upstreamPath?.(url)).toBe(`${STREAM}?alt=sse`);
    expect(geminiWire.errorBody(429, "slow down")).toEqual({
      error: { code: 429, message: "slow down", status: "RESOURCE_EXHAUSTED" },
    });
  });
});

describe("the Gemini API reply", () => {
  const reply = {
    id: "r1",
    model: "gemini-2.5-pro",
    content: "Let me look it up now.",
    toolCalls: [{ id: "call_9", name: "lookup", arguments: '{"city":"Oslo"}' }],
    usage,
    finishReason: "tool_calls" as const,
  };

  it("renders a whole response with usageMetadata, and the gateway reads it", () => {
    const json = geminiResponse(reply);
    expect(json.candidates[0]).toEqual({
      content: {
        role: "model",
        parts: [
          { text: "Let me look it up now." },
          { functionCall: { id: "call_9", name: "lookup", args: { city: "Oslo" } } },
        ],
      },
      finishReason: "STOP",
      index: 0,
    });
    expect(json.usageMetadata).toEqual({
      promptTokenCount: 21,
      candidatesTokenCount: 8,
      totalTokenCount: 29,
    });
    expect(geminiWire.usageFromResponse(json)).toEqual({
      inputTokens: 21,
      outputTokens: 8,
      cachedInputTokens: 0,
    });
  });

  it("streams partial responses whose parts add up to the reply; the meter reads the last usage", () => {
    const chunks = geminiStreamChunks(reply, 3);
    const parts = chunks.flatMap((c) => c.candidates[0]!.content.parts);
    expect(parts.map((p) => p.text ?? "").join("")).toBe(reply.content);
    expect(parts.filter((p) => p.functionCall)).toHaveLength(1);
    expect(chunks.at(-1)?.candidates[0]?.finishReason).toBe("STOP");
    expect(chunks.slice(0, -1).every((c) => c.usageMetadata === undefined)).toBe(true);
    const meter = geminiWire.createStreamMeter();
    for (const event of parseSSE(chunks.map((c) => encodeSSE(c)).join(""))) meter.onEvent(event);
    expect(meter.usage()).toEqual({ inputTokens: 21, outputTokens: 8, cachedInputTokens: 0 });
  });

  it("counts cached and thinking tokens as a Gemini bill does", () => {
    expect(
      geminiWire.usageFromResponse({
        usageMetadata: {
          promptTokenCount: 100,
          cachedContentTokenCount: 40,
          candidatesTokenCount: 10,
          thoughtsTokenCount: 5,
        },
      }),
    ).toEqual({ inputTokens: 100, outputTokens: 15, cachedInputTokens: 40 });
    expect(geminiResponse({ ...reply, finishReason: "length" }).candidates[0]?.finishReason).toBe(
      "MAX_TOKENS",
    );
  });
});
