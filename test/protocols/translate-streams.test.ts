import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import {
  assembleAnthropicEvents,
  createTranslation,
  encodeSSE,
  type ProtocolName,
  parseSSE,
} from "../../src/protocols/index.ts";

// One reply, "Let me look." then a read_file call, as each upstream streams it (arguments split
// mid-token, usage where the service puts it): 120 input tokens of which 20 cached, 30 output.

const chatUpstream = [
  { choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] },
  { choices: [{ index: 0, delta: { content: "Let me " }, finish_reason: null }] },
  { choices: [{ index: 0, delta: { content: "look." }, finish_reason: null }] },
  {
    choices: [
      {
        index: 0,
        delta: {
          tool_calls: [
            {
              index: 0,
              id: "call_abc",
              type: "function",
              function: { name: "read_file", arguments: "" },
            },
          ],
        },
        finish_reason: null,
      },
    ],
  },
  {
    choices: [
      {
        index: 0,
        delta: { tool_calls: [{ index: 0, function: { arguments: '{"pa' } }] },
        finish_reason: null,
      },
    ],
  },
  {
    choices: [
      {
        index: 0,
        delta: { tool_calls: [{ index: 0, function: { arguments: 'th":"a.ts"}' } }] },
        finish_reason: null,
      },
    ],
  },
  { choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] },
  {
    choices: [],
    usage: {
      prompt_tokens: 120,
      completion_tokens: 30,
      total_tokens: 150,
      prompt_tokens_details: { cached_tokens: 20 },
    },
  },
]
  .map((chunk) =>
    encodeSSE({
      id: "chatcmpl-1",
      object: "chat.completion.chunk",
      created: 1,
      model: "gpt-x",
      ...chunk,
    }),
  )
  .join("")
  .concat(encodeSSE("[DONE]"));

const anthropicEvent = (data: { type: string } & Record<string, unknown>) =>
  encodeSSE(data, data.type);
const anthropicUpstream = [
  {
    type: "message_start",
    message: {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-x",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: 100,
        cache_read_input_tokens: 20,
        cache_creation_input_tokens: 0,
        output_tokens: 1,
      },
    },
  },
  { type: "ping" },
  { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
  { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Let me " } },
  { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "look." } },
  { type: "content_block_stop", index: 0 },
  {
    type: "content_block_start",
    index: 1,
    content_block: { type: "tool_use", id: "toolu_01", name: "read_file", input: {} },
  },
  { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "" } },
  {
    type: "content_block_delta",
    index: 1,
    delta: { type: "input_json_delta", partial_json: '{"pa' },
  },
  {
    type: "content_block_delta",
    index: 1,
    delta: { type: "input_json_delta", partial_json: 'th":"a.ts"}' },
  },
  { type: "content_block_stop", index: 1 },
  {
    type: "message_delta",
    delta: { stop_reason: "tool_use", stop_sequence: null },
    usage: { output_tokens: 30 },
  },
  { type: "message_stop" },
]
  .map(anthropicEvent)
  .join("");

const geminiUpstream = [
  {
    candidates: [{ content: { role: "model", parts: [{ text: "Let me " }] }, index: 0 }],
    usageMetadata: { promptTokenCount: 120, candidatesTokenCount: 2, totalTokenCount: 122 },
  },
  {
    candidates: [{ content: { role: "model", parts: [{ text: "look." }] }, index: 0 }],
    usageMetadata: { promptTokenCount: 120, candidatesTokenCount: 4, totalTokenCount: 124 },
  },
  {
    candidates: [
      {
        content: {
          role: "model",
          parts: [
            {
              functionCall: { name: "read_file", args: { path: "a.ts" } },
              thoughtSignature: "c2ln",
            },
          ],
        },
        finishReason: "STOP",
        index: 0,
      },
    ],
    usageMetadata: {
      promptTokenCount: 120,
      candidatesTokenCount: 30,
      totalTokenCount: 150,
      cachedContentTokenCount: 20,
    },
  },
]
  .map((chunk) => encodeSSE({ ...chunk, modelVersion: "gemini-x", responseId: "r1" }))
  .join("");

const upstreamStreams: Partial<Record<ProtocolName, string>> = {
  "openai-chat": chatUpstream,
  "anthropic-messages": anthropicUpstream,
  gemini: geminiUpstream,
};

const clientPaths: Record<ProtocolName, string> = {
  "anthropic-messages": "/v1/messages",
  "openai-chat": "/v1/chat/completions",
  "openai-responses": "/v1/responses",
  gemini: "/v1beta/models/client-model:streamGenerateContent",
};

const streamedRequests: Record<ProtocolName, unknown> = {
  "anthropic-messages": {
    model: "client-model",
    max_tokens: 100,
    stream: true,
    messages: [{ role: "user", content: "go" }],
  },
  "openai-chat": {
    model: "client-model",
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: "user", content: "go" }],
  },
  "openai-responses": { model: "client-model", stream: true, input: "go" },
  gemini: { contents: [{ role: "user", parts: [{ text: "go" }] }] },
};

/** Runs an upstream SSE body through a translation, event by event, as the gateway does. */
function translateStream(
  client: ProtocolName,
  upstream: ProtocolName,
  upstreamText: string,
  request?: unknown,
) {
  const translation = createTranslation(client, upstream, {
    upstreamModel: "up",
    clientModel: "client-model",
  });
  translation.request(request ?? streamedRequests[client], clientPaths[client]);
  const stream = translation.createStream();
  return (
    parseSSE(upstreamText)
      .map((event) => stream.push(event))
      .join("") + stream.end()
  );
}

const sse = (text: string) => async () =>
  new Response(text, { status: 200, headers: { "content-type": "text/event-stream" } });

const anthropicClient = (text: string) =>
  new Anthropic({ apiKey: "k", baseURL: "http://127.0.0.1:9", maxRetries: 0, fetch: sse(text) });
const openAIClient = (text: string) =>
  new OpenAI({ apiKey: "k", baseURL: "http://127.0.0.1:9/v1", maxRetries: 0, fetch: sse(text) });

const upstreamsFor = (client: ProtocolName) =>
  (["openai-chat", "anthropic-messages", "gemini"] as ProtocolName[]).filter((u) => u !== client);

describe("streamed replies, parsed by the official clients", () => {
  for (const upstream of upstreamsFor("anthropic-messages")) {
    it(`@anthropic-ai/sdk reads a ${upstream} stream: text, then tool_use with whole input; usage as the upstream's`, async () => {
      const text = translateStream("anthropic-messages", upstream, upstreamStreams[upstream] ?? "");
      const message = await anthropicClient(text)
        .messages.stream({
          model: "client-model",
          max_tokens: 100,
          messages: [{ role: "user", content: "go" }],
        })
        .finalMessage();
      expect(message.model).toBe("client-model");
      expect(message.id).toMatch(/^msg_/);
      expect(message.stop_reason).toBe("tool_use");
      expect(message.content).toEqual([
        { type: "text", text: "Let me look." },
        { type: "tool_use", id: expect.any(String), name: "read_file", input: { path: "a.ts" } },
      ]);
      // Anthropic's input_tokens leaves the cache reads out: 100 + 20 cached = the upstream's 120.
      expect(message.usage).toMatchObject({
        input_tokens: 100,
        cache_read_input_tokens: 20,
        output_tokens: 30,
      });
      const events = parseSSE(text);
      expect(events.map((e) => e.event)).toEqual(
        [
          "message_start",
          "content_block_start",
          "content_block_delta",
          "content_block_delta",
          "content_block_stop",
          "content_block_start",
          "content_block_delta",
          "content_block_delta",
          "content_block_stop",
          "message_delta",
          "message_stop",
        ].filter((_, i) => upstream !== "gemini" || i !== 7),
      );
      expect(assembleAnthropicEvents(events).toolCalls[0]?.arguments).toBe('{"path":"a.ts"}');
    });
  }

  for (const upstream of upstreamsFor("openai-chat")) {
    it(`openai reads a ${upstream} stream as chat chunks, with a usage chunk because the client asked`, async () => {
      const text = translateStream("openai-chat", upstream, upstreamStreams[upstream] ?? "");
      const stream = openAIClient(text).chat.completions.stream({
        model: "client-model",
        messages: [{ role: "user", content: "go" }],
        stream_options: { include_usage: true },
      });
      const completion = await stream.finalChatCompletion();
      const choice = completion.choices[0];
      expect(completion.model).toBe("client-model");
      expect(choice?.finish_reason).toBe("tool_calls");
      expect(choice?.message.content).toBe("Let me look.");
      expect(choice?.message.tool_calls).toEqual([
        {
          id: expect.any(String),
          type: "function",
          function: { name: "read_file", arguments: '{"path":"a.ts"}' },
        },
      ]);
      expect(completion.usage).toMatchObject({
        prompt_tokens: 120,
        completion_tokens: 30,
        total_tokens: 150,
        prompt_tokens_details: { cached_tokens: 20 },
      });
      expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    });
  }

  it("a chat client that did not ask for usage gets no usage chunk", () => {
    const text = translateStream("openai-chat", "anthropic-messages", anthropicUpstream, {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "go" }],
    });
    const chunks = parseSSE(text)
      .filter((e) => e.data !== "[DONE]")
      .map((e) => JSON.parse(e.data));
    expect(chunks.every((c) => c.choices.length === 1 && c.usage === undefined)).toBe(true);
  });

  for (const upstream of upstreamsFor("openai-responses")) {
    it(`openai reads a ${upstream} stream as Responses events (as Codex parses them)`, async () => {
      const text = translateStream("openai-responses", upstream, upstreamStreams[upstream] ?? "");
      const response = await openAIClient(text)
        .responses.stream({ model: "client-model", input: "go" })
        .finalResponse();
      expect(response.status).toBe("completed");
      expect(response.model).toBe("client-model");
      expect(response.output_text).toBe("Let me look.");
      expect(response.output.map((item) => item.type)).toEqual(["message", "function_call"]);
      expect(response.output[1]).toMatchObject({
        type: "function_call",
        status: "completed",
        call_id: expect.any(String),
        name: "read_file",
        arguments: '{"path":"a.ts"}',
      });
      expect(response.usage).toEqual({
        input_tokens: 120,
        input_tokens_details: { cached_tokens: 20 },
        output_tokens: 30,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 150,
      });
      const events = parseSSE(text).map((e) => JSON.parse(e.data));
      expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
      expect(events.map((e) => e.type)).toEqual(
        [
          "response.created",
          "response.in_progress",
          "response.output_item.added",
          "response.content_part.added",
          "response.output_text.delta",
          "response.output_text.delta",
          "response.output_text.done",
          "response.content_part.done",
          "response.output_item.done",
          "response.output_item.added",
          "response.function_call_arguments.delta",
          "response.function_call_arguments.delta",
          "response.function_call_arguments.done",
          "response.output_item.done",
          "response.completed",
        ].filter((_, i) => upstream !== "gemini" || i !== 11),
      );
    });
  }

  for (const upstream of upstreamsFor("gemini")) {
    it(`a ${upstream} stream becomes Gemini chunks: text as it comes, the call whole, finish and usage last`, () => {
      const text = translateStream("gemini", upstream, upstreamStreams[upstream] ?? "");
      const chunks = parseSSE(text).map((e) => JSON.parse(e.data));
      expect(chunks.map((c) => c.candidates[0].content.parts)).toEqual([
        [{ text: "Let me " }],
        [{ text: "look." }],
        [{ functionCall: { id: expect.any(String), name: "read_file", args: { path: "a.ts" } } }],
      ]);
      const last = chunks.at(-1);
      expect(last.candidates[0].finishReason).toBe("STOP");
      expect(last.usageMetadata).toEqual({
        promptTokenCount: 120,
        candidatesTokenCount: 30,
        totalTokenCount: 150,
        cachedContentTokenCount: 20,
      });
      expect(last.modelVersion).toBe("client-model");
    });
  }
});

describe("streams that end badly", () => {
  const anthropicError = anthropicEvent({
    type: "error",
    error: { type: "overloaded_error", message: "Overloaded" },
  });
  const cut = anthropicUpstream.split("event: content_block_stop")[0] ?? "";

  it("an upstream error event mid-stream reaches the Anthropic client as an error", async () => {
    const text = translateStream(
      "anthropic-messages",
      "gemini",
      geminiUpstream.split("\n\n")[0] +
        "\n\n" +
        encodeSSE({
          error: { code: 503, message: "The model is overloaded.", status: "UNAVAILABLE" },
        }),
    );
    expect(text).toContain("event: error");
    await expect(
      anthropicClient(text)
        .messages.stream({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "go" }] })
        .finalMessage(),
    ).rejects.toThrow(/The model is overloaded/);
  });

  it("an Anthropic `error` event mid-stream makes the OpenAI client throw with the provider's message", async () => {
    const text = translateStream("openai-chat", "anthropic-messages", cut + anthropicError);
    expect(text).not.toContain("[DONE]");
    const stream = openAIClient(text).chat.completions.stream({
      model: "m",
      messages: [{ role: "user", content: "go" }],
    });
    await expect(stream.finalChatCompletion()).rejects.toThrow(/Overloaded/);
  });

  it("an Anthropic `error` event becomes response.failed for a Responses client", () => {
    const text = translateStream("openai-responses", "anthropic-messages", cut + anthropicError);
    const events = parseSSE(text).map((e) => JSON.parse(e.data));
    expect(events.at(-1)).toMatchObject({
      type: "response.failed",
      response: { status: "failed", error: { code: "overloaded_error", message: "Overloaded" } },
    });
  });

  it("an upstream that stops without finishing still gets the client's stream closed properly", async () => {
    const text = translateStream(
      "anthropic-messages",
      "openai-chat",
      chatUpstream.split("data: {")[0] +
        chatUpstream.split("\n\n").slice(0, 3).join("\n\n") +
        "\n\n",
    );
    const message = await anthropicClient(text)
      .messages.stream({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "go" }] })
      .finalMessage();
    expect(message.content).toEqual([{ type: "text", text: "Let me look." }]);
    expect(message.stop_reason).toBe("end_turn");
    expect(parseSSE(text).at(-1)?.event).toBe("message_stop");
  });
});
