import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { createTranslation, type ProtocolName } from "../../src/protocols/index.ts";

// One whole reply, "Let me look." then a read_file call, as each upstream returns it without
// streaming: 120 input tokens of which 20 cached, 30 output.
const upstreamReplies: Partial<Record<ProtocolName, unknown>> = {
  "openai-chat": {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1,
    model: "gpt-x",
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: "Let me look.",
          tool_calls: [
            {
              id: "call_abc",
              type: "function",
              function: { name: "read_file", arguments: '{"path":"a.ts"}' },
            },
          ],
        },
        finish_reason: "tool_calls",
      },
    ],
    usage: {
      prompt_tokens: 120,
      completion_tokens: 30,
      total_tokens: 150,
      prompt_tokens_details: { cached_tokens: 20 },
    },
  },
  "anthropic-messages": {
    id: "msg_1",
    type: "message",
    role: "assistant",
    model: "claude-x",
    content: [
      { type: "text", text: "Let me look." },
      { type: "tool_use", id: "toolu_01", name: "read_file", input: { path: "a.ts" } },
    ],
    stop_reason: "tool_use",
    stop_sequence: null,
    usage: {
      input_tokens: 100,
      cache_read_input_tokens: 20,
      cache_creation_input_tokens: 0,
      output_tokens: 30,
    },
  },
  gemini: {
    candidates: [
      {
        content: {
          role: "model",
          parts: [
            { text: "Let me look." },
            { functionCall: { name: "read_file", args: { path: "a.ts" } } },
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
    modelVersion: "gemini-x",
  },
};

const UPSTREAMS: ProtocolName[] = ["openai-chat", "anthropic-messages", "gemini"];
const upstreamsFor = (client: ProtocolName) => UPSTREAMS.filter((u) => u !== client);

const translation = (client: ProtocolName, upstream: ProtocolName) =>
  createTranslation(client, upstream, { upstreamModel: "up", clientModel: "client-model" });

const json =
  (body: unknown, status = 200) =>
  async () =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const anthropicClient = (body: unknown, status?: number) =>
  new Anthropic({
    apiKey: "k",
    baseURL: "http://127.0.0.1:9",
    maxRetries: 0,
    fetch: json(body, status),
  });
const openAIClient = (body: unknown, status?: number) =>
  new OpenAI({
    apiKey: "k",
    baseURL: "http://127.0.0.1:9/v1",
    maxRetries: 0,
    fetch: json(body, status),
  });

describe("non-streamed replies, read by the official clients", () => {
  for (const upstream of upstreamsFor("anthropic-messages")) {
    it(`a ${upstream} reply as an Anthropic message`, async () => {
      const body = translation("anthropic-messages", upstream).response(upstreamReplies[upstream]);
      const message = await anthropicClient(body).messages.create({
        model: "client-model",
        max_tokens: 5,
        messages: [{ role: "user", content: "go" }],
      });
      expect(message).toMatchObject({
        type: "message",
        model: "client-model",
        stop_reason: "tool_use",
      });
      expect(message.content).toEqual([
        { type: "text", text: "Let me look." },
        { type: "tool_use", id: expect.any(String), name: "read_file", input: { path: "a.ts" } },
      ]);
      expect(message.usage).toEqual({
        input_tokens: 100,
        output_tokens: 30,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 20,
      });
    });
  }

  for (const upstream of upstreamsFor("openai-chat")) {
    it(`a ${upstream} reply as a chat completion`, async () => {
      const body = translation("openai-chat", upstream).response(upstreamReplies[upstream]);
      const completion = await openAIClient(body).chat.completions.create({
        model: "client-model",
        messages: [{ role: "user", content: "go" }],
      });
      expect(completion.model).toBe("client-model");
      expect(completion.choices[0]).toMatchObject({
        finish_reason: "tool_calls",
        message: {
          content: "Let me look.",
          tool_calls: [
            { type: "function", function: { name: "read_file", arguments: '{"path":"a.ts"}' } },
          ],
        },
      });
      expect(completion.usage).toMatchObject({
        prompt_tokens: 120,
        completion_tokens: 30,
        total_tokens: 150,
      });
    });
  }

  for (const upstream of upstreamsFor("openai-responses")) {
    it(`a ${upstream} reply as a Responses object`, async () => {
      const body = translation("openai-responses", upstream).response(upstreamReplies[upstream]);
      const response = await openAIClient(body).responses.create({
        model: "client-model",
        input: "go",
      });
      expect(response.output_text).toBe("Let me look.");
      expect(response.output[1]).toMatchObject({
        type: "function_call",
        name: "read_file",
        arguments: '{"path":"a.ts"}',
      });
      expect(response.usage).toMatchObject({
        input_tokens: 120,
        output_tokens: 30,
        total_tokens: 150,
      });
    });
  }

  for (const upstream of upstreamsFor("gemini")) {
    it(`a ${upstream} reply as a generateContent response`, () => {
      const body = translation("gemini", upstream).response(upstreamReplies[upstream]);
      expect(body).toMatchObject({
        candidates: [
          {
            content: {
              role: "model",
              parts: [
                { text: "Let me look." },
                {
                  functionCall: {
                    id: expect.any(String),
                    name: "read_file",
                    args: { path: "a.ts" },
                  },
                },
              ],
            },
            finishReason: "STOP",
          },
        ],
        usageMetadata: { promptTokenCount: 120, candidatesTokenCount: 30, totalTokenCount: 150 },
        modelVersion: "client-model",
      });
    });
  }

  it("Gemini calls carry no ids: each gets a fresh, unique one", () => {
    const two = {
      candidates: [
        {
          content: {
            role: "model",
            parts: [
              { functionCall: { name: "ls", args: {} } },
              { functionCall: { name: "ls", args: {} } },
            ],
          },
          finishReason: "STOP",
        },
      ],
    };
    const first = translation("openai-chat", "gemini").response(two) as OpenAI.ChatCompletion;
    const second = translation("openai-chat", "gemini").response(two) as OpenAI.ChatCompletion;
    const ids = [first, second].flatMap((c) => c.choices[0]?.message.tool_calls?.map((t) => t.id));
    expect(ids.every((id) => /^call_[0-9a-f]+_\d$/.test(id ?? ""))).toBe(true);
    expect(new Set(ids).size).toBe(4);
    expect(first.choices[0]?.finish_reason).toBe("tool_calls");
  });

  it("a reply cut short by the output limit says so in each client's terms", () => {
    const cut = {
      ...(upstreamReplies["openai-chat"] as object),
      choices: [
        { index: 0, message: { role: "assistant", content: "Let" }, finish_reason: "length" },
      ],
    };
    expect(translation("anthropic-messages", "openai-chat").response(cut)).toMatchObject({
      stop_reason: "max_tokens",
    });
    expect(translation("openai-responses", "openai-chat").response(cut)).toMatchObject({
      status: "incomplete",
      incomplete_details: { reason: "max_output_tokens" },
    });
    expect(translation("gemini", "openai-chat").response(cut)).toMatchObject({
      candidates: [{ finishReason: "MAX_TOKENS" }],
    });
  });
});

describe("upstream errors keep the provider's message, in the client's error shape", () => {
  const anthropic404 = JSON.stringify({
    type: "error",
    error: { type: "not_found_error", message: "model: claude-nope not found" },
  });
  const openAI404 = JSON.stringify({
    error: {
      message: "The model `gpt-nope` does not exist",
      type: "invalid_request_error",
      param: null,
      code: "model_not_found",
    },
  });
  const gemini404 = JSON.stringify({
    error: {
      code: 404,
      message: "models/gemini-nope is not found for API version v1beta",
      status: "NOT_FOUND",
    },
  });

  it("Anthropic error -> OpenAI chat client: the SDK raises NotFoundError with the message", async () => {
    const body = translation("openai-chat", "anthropic-messages").error(404, anthropic404);
    expect(body).toEqual({
      error: {
        message: "model: claude-nope not found",
        type: "not_found_error",
        param: null,
        code: "not_found_error",
      },
    });
    const call = openAIClient(body, 404).chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
    });
    await expect(call).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(call).rejects.toThrow(/claude-nope not found/);
  });

  it("OpenAI error -> Anthropic client: the SDK raises NotFoundError with the message", async () => {
    const body = translation("anthropic-messages", "openai-chat").error(404, openAI404);
    expect(body).toEqual({
      type: "error",
      error: { type: "not_found_error", message: "The model `gpt-nope` does not exist" },
    });
    const call = anthropicClient(body, 404).messages.create({
      model: "m",
      max_tokens: 5,
      messages: [{ role: "user", content: "x" }],
    });
    await expect(call).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("Gemini error -> Responses and Anthropic clients", () => {
    expect(translation("openai-responses", "gemini").error(404, gemini404)).toEqual({
      error: {
        message: "models/gemini-nope is not found for API version v1beta",
        type: "not_found_error",
        param: null,
        code: "NOT_FOUND",
      },
    });
    expect(translation("anthropic-messages", "gemini").error(404, gemini404)).toMatchObject({
      error: { message: "models/gemini-nope is not found for API version v1beta" },
    });
  });

  it("OpenAI error -> Gemini client, and a body that is not JSON is passed on as text", () => {
    expect(translation("gemini", "openai-chat").error(429, openAI404)).toEqual({
      error: {
        code: 429,
        message: "The model `gpt-nope` does not exist",
        status: "RESOURCE_EXHAUSTED",
      },
    });
    expect(
      translation("gemini", "anthropic-messages").error(502, "<html>Bad gateway</html>"),
    ).toEqual({
      error: { code: 502, message: "<html>Bad gateway</html>", status: "INTERNAL" },
    });
    expect(translation("openai-chat", "gemini").error(500, "")).toMatchObject({
      error: { message: "upstream replied with HTTP 500" },
    });
  });
});
