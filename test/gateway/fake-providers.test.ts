// The fake providers in test/support/fake-providers.ts behave like the real services: driven here by
// the vendors' official clients (@anthropic-ai/sdk, openai) and, for Gemini, by plain fetch.
import Anthropic, { type APIError as AnthropicAPIError } from "@anthropic-ai/sdk";
import OpenAI, { type APIError as OpenAIAPIError } from "openai";
import { afterEach, describe, expect, it } from "vitest";
import {
  estimateUsage,
  type FakeProvider,
  type FakeScript,
  type FakeTurn,
  lastToolResult,
  lastUserText,
  type RecordedRequest,
  startFakeAnthropic,
  startFakeGemini,
  startFakeOpenAI,
  startFakeOpenAICompatible,
  toolNames,
} from "../support/fake-providers.ts";

const KEY = "sk-fake-0123456789abcdef";
const started: FakeProvider[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((fake) => fake.close()));
});
async function track<T extends FakeProvider>(fake: Promise<T>): Promise<T> {
  const f = await fake;
  started.push(f);
  return f;
}

const LOOKUP_TURN: FakeTurn = {
  text: "Let me look that up.",
  toolCalls: [{ name: "lookup", arguments: { city: "Oslo", days: [1, 2, 3], detail: "full" } }],
};
const FINAL_TEXT = "It is sunny in Oslo, 21 degrees, and the wind is calm.";

/** First a tool call; once a tool result has come back, a closing text that quotes it. */
const toolLoop: FakeScript = (request) => {
  const result = lastToolResult(request);
  return result === undefined ? LOOKUP_TURN : { text: `${FINAL_TEXT} (${result})` };
};

/** Reads an SSE body into [event name | null, parsed data] pairs. */
async function readSse(response: Response): Promise<{ event: string | null; data: string }[]> {
  const text = await response.text();
  return text
    .split(/\r?\n\r?\n/)
    .filter((block) => block.trim().length > 0)
    .map((block) => {
      const lines = block.split(/\r?\n/);
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? null;
      const data = lines
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      return { event, data };
    });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the request to be refused");
}

describe("fake Anthropic", () => {
  const tools = [
    {
      name: "lookup",
      description: "Weather lookup",
      input_schema: { type: "object" as const, properties: { city: { type: "string" } } },
    },
  ];
  const ask = { model: "claude-sonnet-5-5", max_tokens: 256, tools };

  it("answers messages.create with text and tool_use, reporting the usage it sent", async () => {
    const fake = await track(startFakeAnthropic({ apiKey: KEY, script: () => LOOKUP_TURN }));
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = new Anthropic({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const { data, response } = await client.messages
      .create({ ...ask, messages: [{ role: "user", content: "Weather in Oslo?" }] })
      .withResponse();
    expect(data.content).toEqual([
      { type: "text", text: "Let me look that up." },
      {
        type: "tool_use",
        id: expect.stringMatching(/^toolu_01/),
        name: "lookup",
        input: LOOKUP_TURN.toolCalls![0]!.arguments,
      },
    ]);
    expect(data.stop_reason).toBe("tool_use");
    expect(data.id).toMatch(/^msg_01/);
    const expected = estimateUsage(fake.requests[0]!.body, LOOKUP_TURN);
    expect(data.usage).toMatchObject({
      input_tokens: expected.input,
      output_tokens: expected.output,
    });
    expect(fake.reported).toEqual({
      inputTokens: expected.input,
      outputTokens: expected.output,
      requests: 1,
    });
    expect(response.headers.get("request-id")).toMatch(/^req_011C/);
    expect(response.headers.get("anthropic-ratelimit-requests-limit")).toBe("4000");
    expect(response.headers.get("anthropic-ratelimit-tokens-remaining")).toMatch(/^\d+$/);
    // The SDK (API version 2026-10-21) sends its key as a Bearer token; the fake records it all.
    const recorded = fake.requests[0]!;
    expect(recorded.method).toBe("POST");
    expect(recorded.path).toBe("/v1/messages");
    expect(recorded.headers["anthropic-version"]).toBe("2026-10-21");
    expect(recorded.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it("streams named events in the API's order, tool input in several input_json_delta pieces", async () => {
    const fake = await track(startFakeAnthropic({ apiKey: KEY, script: () => LOOKUP_TURN }));
    const response = await fetch(`${fake.url}/v1/messages`, {
      method: "POST",
      headers: {
        "x-api-key": KEY,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
      },
      body: JSON.stringify({
        ...ask,
        stream: true,
        messages: [{ role: "user", content: "Weather?" }],
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = await readSse(response);
    for (const e of events) expect(JSON.parse(e.data).type).toBe(e.event);
    const names = events.map((e) => e.event);
    const collapsed = names.filter((n, i) => n !== names[i - 1]);
    expect(collapsed).toEqual([
      "message_start",
      "ping",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const data = events.map((e) => JSON.parse(e.data));
    expect(data[0].message.usage.output_tokens).toBe(1);
    const jsonPieces = data
      .filter((d) => d.delta?.type === "input_json_delta")
      .map((d) => d.delta.partial_json as string);
    expect(jsonPieces.length).toBeGreaterThanOrEqual(3);
    expect(JSON.parse(jsonPieces.join(""))).toEqual(LOOKUP_TURN.toolCalls![0]!.arguments);
    const toolStart = data.find((d) => d.content_block?.type === "tool_use");
    expect(toolStart.content_block.input).toEqual({});
    const expected = estimateUsage(fake.requests[0]!.body, LOOKUP_TURN);
    expect(data.at(-2)).toEqual({
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { output_tokens: expected.output },
    });
    expect(fake.reported).toEqual({
      inputTokens: expected.input,
      outputTokens: expected.output,
      requests: 1,
    });
  });

  it("serves the SDK's stream helpers and a whole tool loop", async () => {
    const fake = await track(startFakeAnthropic({ apiKey: KEY, script: toolLoop }));
    const client = new Anthropic({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const types: string[] = [];
    const raw = await client.messages.create({
      ...ask,
      stream: true,
      messages: [{ role: "user", content: "Weather in Oslo?" }],
    });
    for await (const event of raw) types.push(event.type);
    expect(types[0]).toBe("message_start");
    expect(types.at(-1)).toBe("message_stop");

    const first = await client.messages
      .stream({ ...ask, messages: [{ role: "user", content: "Weather in Oslo?" }] })
      .finalMessage();
    const toolUse = first.content.find((b) => b.type === "tool_use");
    expect(toolUse).toMatchObject({ name: "lookup", input: LOOKUP_TURN.toolCalls![0]!.arguments });
    const second = await client.messages
      .stream({
        ...ask,
        messages: [
          { role: "user", content: "Weather in Oslo?" },
          { role: "assistant", content: first.content },
          {
            role: "user",
            content: [{ type: "tool_result", tool_use_id: toolUse!.id, content: "sunny, 21C" }],
          },
        ],
      })
      .finalMessage();
    expect(second.content).toEqual([{ type: "text", text: `${FINAL_TEXT} (sunny, 21C)` }]);
    expect(second.stop_reason).toBe("end_turn");
    const last = fake.requests.at(-1)!;
    expect(lastToolResult(last)).toBe("sunny, 21C");
    expect(toolNames(last)).toEqual(["lookup"]);
    expect(lastUserText(fake.requests[0]!)).toBe("Weather in Oslo?");
    const sum = fake.requests.reduce(
      (acc, r, i) => {
        const u = estimateUsage(
          r.body,
          i < 2 ? LOOKUP_TURN : { text: `${FINAL_TEXT} (sunny, 21C)` },
        );
        return {
          inputTokens: acc.inputTokens + u.input,
          outputTokens: acc.outputTokens + u.output,
        };
      },
      { inputTokens: 0, outputTokens: 0 },
    );
    expect(fake.reported).toEqual({ ...sum, requests: 3 });
  });

  it("refuses wrong keys, missing headers and (optionally) Bearer-only auth like the API", async () => {
    const fake = await track(startFakeAnthropic({ apiKey: KEY, script: () => ({ text: "hi" }) }));
    const wrong = new Anthropic({ baseURL: fake.url, apiKey: "sk-ant-wrong", maxRetries: 0 });
    const error = await rejection(
      wrong.messages.create({ ...ask, messages: [{ role: "user", content: "hi" }] }),
    );
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((error as AnthropicAPIError).status).toBe(401);
    expect((error as AnthropicAPIError).type).toBe("authentication_error");
    expect((error as AnthropicAPIError).requestID).toMatch(/^req_/);

    const post = (headers: Record<string, string>) =>
      fetch(`${fake.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ ...ask, messages: [{ role: "user", content: "hi" }] }),
      });
    const noVersion = await post({ "x-api-key": KEY });
    expect(noVersion.status).toBe(400);
    expect(await noVersion.json()).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error", message: "anthropic-version: header is required" },
      request_id: expect.stringMatching(/^req_/),
    });
    const noKey = await post({ "anthropic-version": "2023-06-01" });
    expect(noKey.status).toBe(401);
    expect((await noKey.json()).error).toEqual({
      type: "authentication_error",
      message: "x-api-key header is required",
    });
    // With both headers the API goes by x-api-key.
    const both = await post({
      "x-api-key": "nope",
      authorization: `Bearer ${KEY}`,
      "anthropic-version": "2023-06-01",
    });
    expect(both.status).toBe(401);

    const strict = await track(
      startFakeAnthropic({ apiKey: KEY, acceptBearer: false, script: () => ({ text: "hi" }) }),
    );
    const bearerOnly = await fetch(`${strict.url}/v1/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ ...ask, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(bearerOnly.status).toBe(401);
    expect((await bearerOnly.json()).error.type).toBe("authentication_error");
    expect(strict.requests).toHaveLength(1);
    expect(strict.reported.requests).toBe(0);
  });

  it("fails as scripted: 429 with rate-limit headers, 529 overloaded, 404 unknown model", async () => {
    const fake = await track(
      startFakeAnthropic({
        apiKey: KEY,
        script: (_request, index) =>
          index === 0
            ? { fail: { status: 429, retryAfterSeconds: 7 } }
            : index === 1
              ? { fail: { status: 529 } }
              : { fail: { status: 404 } },
      }),
    );
    const client = new Anthropic({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const call = (model = "claude-sonnet-5-5") =>
      rejection(
        client.messages.create({ ...ask, model, messages: [{ role: "user", content: "hi" }] }),
      );
    const limited = (await call()) as AnthropicAPIError;
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    expect(limited.type).toBe("rate_limit_error");
    expect(limited.headers?.get("retry-after")).toBe("7");
    expect(limited.headers?.get("anthropic-ratelimit-requests-remaining")).toBe("0");
    expect(limited.headers?.get("anthropic-ratelimit-tokens-reset")).toMatch(/^\d{4}-\d\d-\d\dT/);
    const overloaded = (await call()) as AnthropicAPIError;
    expect(overloaded.status).toBe(529);
    expect(overloaded.type).toBe("overloaded_error");
    const missing = (await call("claude-nope")) as AnthropicAPIError;
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    expect(missing.error).toMatchObject({
      error: { type: "not_found_error", message: "model: claude-nope" },
    });
    expect(fake.reported).toEqual({ inputTokens: 0, outputTokens: 0, requests: 0 });
  });

  it("refuses malformed Messages bodies with the API's 400s, without consulting the script", async () => {
    const seen: number[] = [];
    const fake = await track(
      startFakeAnthropic({
        apiKey: KEY,
        script: (_r, index) => {
          seen.push(index);
          return { text: "ok" };
        },
      }),
    );
    const client = new Anthropic({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const refused = async (body: unknown, fragment: string) => {
      const error = await rejection(client.messages.create(body as never));
      expect(error).toBeInstanceOf(Anthropic.BadRequestError);
      expect((error as AnthropicAPIError).type).toBe("invalid_request_error");
      expect((error as AnthropicAPIError).message).toContain(fragment);
    };
    await refused(
      { model: "m", messages: [{ role: "user", content: "hi" }] },
      "max_tokens: Field required",
    );
    await refused({ ...ask, messages: [] }, "messages: at least one message is required");
    await refused(
      {
        ...ask,
        messages: [
          { role: "user", content: "hi" },
          {
            role: "user",
            content: [{ type: "tool_result", tool_use_id: "toolu_x", content: "r" }],
          },
        ],
      },
      "tool_result",
    );
    await refused(
      {
        ...ask,
        messages: [
          { role: "user", content: "hi" },
          {
            role: "assistant",
            content: [{ type: "tool_use", id: "toolu_a", name: "lookup", input: {} }],
          },
          {
            role: "user",
            content: [{ type: "tool_result", tool_use_id: "toolu_b", content: "r" }],
          },
        ],
      },
      "unexpected `tool_use_id` found in `tool_result` blocks: toolu_b",
    );
    await refused(
      {
        ...ask,
        messages: [
          { role: "user", content: "hi" },
          {
            role: "assistant",
            content: [{ type: "tool_use", id: "toolu_a", name: "lookup", input: {} }],
          },
          { role: "user", content: "and?" },
        ],
      },
      "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_a",
    );
    await refused(
      { ...ask, messages: [{ role: "user", content: [{ type: "text", text: "" }] }] },
      "text content blocks must be non-empty",
    );
    await refused(
      {
        ...ask,
        tools: [{ type: "function", function: { name: "lookup" } }],
        messages: [{ role: "user", content: "hi" }],
      },
      "Input tag 'function'",
    );
    // API version 2026-10-21 (what the SDK sends) removed the sampling parameters.
    await refused(
      { ...ask, temperature: 0.2, messages: [{ role: "user", content: "hi" }] },
      "temperature: Extra inputs are not permitted",
    );
    await refused(
      { ...ask, max_completion_tokens: 5, messages: [{ role: "user", content: "hi" }] },
      "max_completion_tokens: Extra inputs are not permitted",
    );
    expect(seen).toEqual([]);
    // ... while 2023-06-01 still takes temperature.
    const old = await fetch(`${fake.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        ...ask,
        temperature: 0.2,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    expect(old.status).toBe(200);
    expect(seen).toEqual([0]);
  });

  it("counts tokens and answers Claude Code's HEAD / probe without touching the script", async () => {
    const seen: number[] = [];
    const fake = await track(
      startFakeAnthropic({
        apiKey: KEY,
        script: (_r, index) => {
          seen.push(index);
          return { text: "ok" };
        },
      }),
    );
    const client = new Anthropic({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const body = {
      model: "claude-sonnet-5-5",
      messages: [{ role: "user" as const, content: "count me" }],
    };
    const counted = await client.messages.countTokens(body);
    expect(counted).toEqual({ input_tokens: estimateUsage(fake.requests[0]!.body, {}).input });
    const head = await fetch(`${fake.url}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(seen).toEqual([]);
    await client.messages.create({ ...body, max_tokens: 10 });
    expect(seen).toEqual([0]);
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "POST /v1/messages/count_tokens",
      "HEAD /",
      "POST /v1/messages",
    ]);
    expect(fake.reported.requests).toBe(1);
  });
});

describe("fake OpenAI", () => {
  const tools = [
    {
      type: "function" as const,
      function: {
        name: "lookup",
        parameters: { type: "object", properties: { city: { type: "string" } } },
      },
    },
  ];

  it("streams chat chunks, with the usage chunk only when include_usage is set", async () => {
    const turn = { text: "Hello there, how can I help you today?" };
    const fake = await track(startFakeOpenAI({ apiKey: KEY, script: () => turn }));
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const client = new OpenAI({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]!.object).toBe("chat.completion.chunk");
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(turn.text);
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(1);
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe("stop");
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    const expected = estimateUsage(fake.requests[0]!.body, turn);
    expect(usageChunk.usage).toMatchObject({
      prompt_tokens: expected.input,
      completion_tokens: expected.output,
      total_tokens: expected.input + expected.output,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(fake.reported).toEqual({
      inputTokens: expected.input,
      outputTokens: expected.output,
      requests: 1,
    });

    const bare = await client.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    const bareChunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of bare) bareChunks.push(chunk);
    expect(bareChunks.every((c) => c.usage === undefined && c.choices.length === 1)).toBe(true);
    // Nothing reported on the wire, so nothing summed; the reply still counts.
    expect(fake.reported).toEqual({
      inputTokens: expected.input,
      outputTokens: expected.output,
      requests: 2,
    });

    const raw = await fetch(`${fake.url}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      }),
    });
    expect(raw.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = await readSse(raw);
    expect(events.at(-1)).toEqual({ event: null, data: "[DONE]" });
  });

  it("streams tool calls the SDK's accumulator puts back together, and runs a tool loop", async () => {
    const fake = await track(startFakeOpenAI({ apiKey: KEY, script: toolLoop }));
    const client = new OpenAI({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const question = { role: "user" as const, content: "Weather in Oslo?" };
    const first = await client.chat.completions
      .stream({
        model: "gpt-4o",
        messages: [question],
        tools,
        stream_options: { include_usage: true },
      })
      .finalChatCompletion();
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBe(LOOKUP_TURN.text);
    const call = choice.message.tool_calls![0]!;
    expect(call.type).toBe("function");
    if (call.type !== "function") throw new Error("not a function call");
    expect(call.id).toMatch(/^call_/);
    expect(call.function.name).toBe("lookup");
    expect(JSON.parse(call.function.arguments)).toEqual(LOOKUP_TURN.toolCalls![0]!.arguments);
    const second = await client.chat.completions.create({
      model: "gpt-4o",
      tools,
      messages: [
        question,
        choice.message,
        { role: "tool", tool_call_id: call.id, content: "sunny, 21C" },
      ],
    });
    expect(second.object).toBe("chat.completion");
    expect(second.choices[0]!.message.content).toBe(`${FINAL_TEXT} (sunny, 21C)`);
    expect(second.choices[0]!.finish_reason).toBe("stop");
    const expected = estimateUsage(fake.requests[1]!.body, { text: `${FINAL_TEXT} (sunny, 21C)` });
    expect(second.usage).toEqual({
      prompt_tokens: expected.input,
      completion_tokens: expected.output,
      total_tokens: expected.input + expected.output,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    });
    expect(lastToolResult(fake.requests[1]!)).toBe("sunny, 21C");
    expect(toolNames(fake.requests[1]!)).toEqual(["lookup"]);
    expect(lastToolResult(fake.requests[0]!)).toBeUndefined();
  });

  it("streams Responses events in order with sequence numbers, and the SDK rebuilds the response", async () => {
    const fake = await track(startFakeOpenAI({ apiKey: KEY, script: toolLoop }));
    const client = new OpenAI({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const responseTools = [
      { type: "function" as const, name: "lookup", parameters: { type: "object" }, strict: false },
    ];
    const stream = await client.responses.create({
      model: "gpt-5",
      input: "Weather in Oslo?",
      tools: responseTools,
      stream: true,
    });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const types = events.map((e) => e.type);
    const collapsed = types.filter((t, i) => t !== types[i - 1]);
    expect(collapsed).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const added = events.find(
      (e): e is OpenAI.Responses.ResponseOutputItemAddedEvent =>
        e.type === "response.output_item.added" && e.item.type === "function_call",
    );
    expect(added?.item).toMatchObject({ type: "function_call", arguments: "", name: "lookup" });
    const completed = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    const expected = estimateUsage(fake.requests[0]!.body, LOOKUP_TURN);
    expect(completed.response.usage).toEqual({
      input_tokens: expected.input,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: expected.output,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: expected.input + expected.output,
    });

    const final = await client.responses
      .stream({ model: "gpt-5", input: "Weather in Oslo?", tools: responseTools })
      .finalResponse();
    expect(final.status).toBe("completed");
    expect(final.output_text).toBe(LOOKUP_TURN.text);
    const call = final.output.find((o) => o.type === "function_call");
    if (call?.type !== "function_call") throw new Error("no function call");
    expect(JSON.parse(call.arguments)).toEqual(LOOKUP_TURN.toolCalls![0]!.arguments);

    const answer = await client.responses.create({
      model: "gpt-5",
      tools: responseTools,
      input: [
        { role: "user", content: "Weather in Oslo?" },
        {
          type: "function_call",
          call_id: call.call_id,
          name: call.name,
          arguments: call.arguments,
        },
        { type: "function_call_output", call_id: call.call_id, output: "sunny, 21C" },
      ],
    });
    expect(answer.object).toBe("response");
    expect(answer.output_text).toBe(`${FINAL_TEXT} (sunny, 21C)`);
    expect(lastToolResult(fake.requests.at(-1)!)).toBe("sunny, 21C");
    expect(toolNames(fake.requests.at(-1)!)).toEqual(["lookup"]);
    expect(lastUserText(fake.requests[0]!)).toBe("Weather in Oslo?");
    expect(fake.reported.requests).toBe(3);
  });

  it("refuses bad keys and fails as scripted with OpenAI's error bodies and headers", async () => {
    const fake = await track(
      startFakeOpenAI({
        apiKey: KEY,
        script: (_r, index) =>
          index === 0 ? { fail: { status: 429, retryAfterSeconds: 3 } } : { fail: { status: 404 } },
      }),
    );
    const wrong = new OpenAI({
      baseURL: fake.url,
      apiKey: "sk-proj-wrongwrongwrong1234",
      maxRetries: 0,
    });
    const denied = (await rejection(
      wrong.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "hi" }],
      }),
    )) as OpenAIAPIError;
    expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(denied.code).toBe("invalid_api_key");
    expect(denied.message).toContain("Incorrect API key provided: sk-");
    expect(denied.message).not.toContain("wrongwrongwrong");
    expect(denied.headers?.get("x-request-id")).toMatch(/^req_/);
    const deniedResponses = await rejection(
      wrong.responses.create({ model: "gpt-5", input: "hi" }),
    );
    expect(deniedResponses).toBeInstanceOf(OpenAI.AuthenticationError);

    const client = new OpenAI({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const limited = (await rejection(
      client.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "hi" }],
      }),
    )) as OpenAIAPIError;
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect(limited.code).toBe("rate_limit_exceeded");
    expect(limited.headers?.get("retry-after")).toBe("3");
    expect(limited.headers?.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(limited.headers?.get("x-ratelimit-limit-tokens")).toBe("800000");
    expect(limited.headers?.get("x-ratelimit-reset-tokens")).toBe("3s");
    const missing = (await rejection(
      client.chat.completions.create({
        model: "gpt-9",
        messages: [{ role: "user", content: "hi" }],
      }),
    )) as OpenAIAPIError;
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(missing.code).toBe("model_not_found");
    expect(missing.message).toContain("The model `gpt-9` does not exist");
    expect(fake.reported).toEqual({ inputTokens: 0, outputTokens: 0, requests: 0 });
  });

  it("refuses malformed chat and Responses bodies with the API's 400s", async () => {
    const fake = await track(startFakeOpenAI({ apiKey: KEY, script: () => ({ text: "ok" }) }));
    const client = new OpenAI({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    const refused = async (request: Promise<unknown>, message: string, param?: string) => {
      const error = (await rejection(request)) as OpenAIAPIError;
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error.type).toBe("invalid_request_error");
      expect(error.message).toContain(message);
      if (param) expect(error.param).toBe(param);
    };
    const chat = (body: unknown) => client.chat.completions.create(body as never);
    await refused(
      chat({ model: "gpt-5", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }),
      "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
      "max_tokens",
    );
    await refused(
      chat({ model: "o3-mini", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }),
      "Use 'max_completion_tokens' instead.",
    );
    await refused(chat({ model: "gpt-4o", messages: [] }), "empty array", "messages");
    await refused(
      chat({ messages: [{ role: "user", content: "hi" }] }),
      "you must provide a model parameter",
    );
    await refused(
      chat({
        model: "gpt-4o",
        messages: [
          { role: "user", content: "hi" },
          { role: "tool", tool_call_id: "call_1", content: "r" },
        ],
      }),
      "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'",
    );
    await refused(
      chat({
        model: "gpt-4o",
        messages: [
          { role: "user", content: "hi" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "call_1", type: "function", function: { name: "lookup", arguments: "{}" } },
            ],
          },
          { role: "user", content: "and?" },
        ],
      }),
      "The following tool_call_ids did not have response messages: call_1",
    );
    await refused(
      chat({
        model: "gpt-4o",
        messages: [
          { role: "user", content: "hi" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "call_1", type: "function", function: { name: "lookup", arguments: {} } },
            ],
          },
          { role: "tool", tool_call_id: "call_1", content: "r" },
        ],
      }),
      "expected a string",
    );
    await refused(
      chat({ model: "gpt-4o", thinking: {}, messages: [{ role: "user", content: "hi" }] }),
      "Unrecognized request argument supplied: thinking",
    );
    const ok = await chat({
      model: "gpt-4o",
      max_tokens: 10,
      messages: [{ role: "user", content: "hi" }],
    });
    expect((ok as OpenAI.ChatCompletion).choices[0]!.message.content).toBe("ok");

    const responses = (body: unknown) => client.responses.create(body as never);
    await refused(
      responses({
        model: "gpt-5",
        input: [
          { role: "user", content: "hi" },
          { type: "function_call_output", call_id: "call_9", output: "r" },
        ],
      }),
      "No tool call found for function call output with call_id call_9.",
      "input",
    );
    await refused(
      responses({
        model: "gpt-5",
        input: [
          { role: "user", content: "hi" },
          { type: "function_call", call_id: "call_1", name: "lookup", arguments: "{}" },
        ],
      }),
      "No tool output found for function call call_1.",
    );
    await refused(
      responses({ model: "gpt-5", input: "hi", tools }),
      "Missing required parameter: 'tools[0].name'.",
      "tools[0].name",
    );
    await refused(
      responses({ model: "gpt-5", input: "hi", max_tokens: 10 }),
      "Unknown parameter: 'max_tokens'.",
    );
    await refused(responses({ input: "hi" }), "Missing required parameter: 'model'.");
    expect(fake.reported.requests).toBe(1);
  });
});

describe("fake Gemini", () => {
  const functionDeclarations = [
    {
      name: "lookup",
      description: "Weather lookup",
      parameters: { type: "OBJECT", properties: { city: { type: "STRING" } }, required: ["city"] },
    },
  ];
  const post = (
    fake: FakeProvider,
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ) =>
    fetch(`${fake.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": KEY, ...headers },
      body: JSON.stringify(body),
    });
  const question = { role: "user", parts: [{ text: "Weather in Oslo?" }] };

  it("answers generateContent with the candidates and usageMetadata shape", async () => {
    const fake = await track(startFakeGemini({ apiKey: KEY, script: () => LOOKUP_TURN }));
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await post(fake, "/v1beta/models/gemini-2.5-flash:generateContent", {
      contents: [question],
      tools: [{ functionDeclarations }],
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    const expected = estimateUsage(fake.requests[0]!.body, LOOKUP_TURN);
    expect(body).toEqual({
      candidates: [
        {
          content: {
            role: "model",
            parts: [
              { text: LOOKUP_TURN.text },
              { functionCall: { name: "lookup", args: LOOKUP_TURN.toolCalls![0]!.arguments } },
            ],
          },
          finishReason: "STOP",
          index: 0,
        },
      ],
      usageMetadata: {
        promptTokenCount: expected.input,
        candidatesTokenCount: expected.output,
        totalTokenCount: expected.input + expected.output,
        promptTokensDetails: [{ modality: "TEXT", tokenCount: expected.input }],
      },
      modelVersion: "gemini-2.5-flash",
      responseId: expect.any(String),
    });
    expect(fake.reported).toEqual({
      inputTokens: expected.input,
      outputTokens: expected.output,
      requests: 1,
    });
  });

  it("streams data: lines over SSE (key in ?key=), function calls whole in the last chunk", async () => {
    const fake = await track(startFakeGemini({ apiKey: KEY, script: toolLoop }));
    const response = await fetch(
      `${fake.url}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=${KEY}`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ contents: [question], tools: [{ functionDeclarations }] }),
      },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = await readSse(response);
    expect(events.every((e) => e.event === null)).toBe(true);
    const chunks = events.map((e) => JSON.parse(e.data));
    expect(chunks.length).toBeGreaterThan(1);
    const parts = chunks.flatMap((c) => c.candidates[0].content.parts);
    expect(
      parts
        .filter((p) => p.text !== undefined)
        .map((p) => p.text)
        .join(""),
    ).toBe(LOOKUP_TURN.text);
    const last = chunks.at(-1);
    expect(last.candidates[0].finishReason).toBe("STOP");
    expect(last.candidates[0].content.parts.at(-1)).toEqual({
      functionCall: { name: "lookup", args: LOOKUP_TURN.toolCalls![0]!.arguments },
    });
    expect(chunks.slice(0, -1).every((c) => c.candidates[0].finishReason === undefined)).toBe(true);
    const expected = estimateUsage(fake.requests[0]!.body, LOOKUP_TURN);
    expect(last.usageMetadata).toMatchObject({
      promptTokenCount: expected.input,
      candidatesTokenCount: expected.output,
      totalTokenCount: expected.input + expected.output,
    });
    expect(new Set(chunks.map((c) => c.responseId)).size).toBe(1);
    expect(last.modelVersion).toBe("gemini-2.5-pro");

    // The tool loop continues with a functionResponse right after the model's functionCall turn.
    const next = await post(fake, "/v1beta/models/gemini-2.5-pro:generateContent", {
      contents: [
        question,
        last.candidates[0].content,
        {
          role: "user",
          parts: [{ functionResponse: { name: "lookup", response: { output: "sunny, 21C" } } }],
        },
      ],
      tools: [{ functionDeclarations }],
    });
    expect(next.status).toBe(200);
    expect((await next.json()).candidates[0].content.parts).toEqual([
      { text: `${FINAL_TEXT} (sunny, 21C)` },
    ]);
    expect(lastToolResult(fake.requests[1]!)).toBe("sunny, 21C");
    expect(toolNames(fake.requests[1]!)).toEqual(["lookup"]);
    expect(lastUserText(fake.requests[1]!)).toBe("Weather in Oslo?");
    expect(fake.reported.requests).toBe(2);
  });

  it("refuses keys like Google: a wrong key is 400 INVALID_ARGUMENT, none is 403", async () => {
    const fake = await track(startFakeGemini({ apiKey: KEY, script: () => ({ text: "ok" }) }));
    const path = "/v1beta/models/gemini-2.5-flash:generateContent";
    const wrong = await post(
      fake,
      path,
      { contents: [question] },
      { "x-goog-api-key": "AIza-wrong" },
    );
    expect(wrong.status).toBe(400);
    expect((await wrong.json()).error).toMatchObject({
      code: 400,
      message: "API key not valid. Please pass a valid API key.",
      status: "INVALID_ARGUMENT",
      details: [expect.objectContaining({ reason: "API_KEY_INVALID" })],
    });
    const none = await fetch(`${fake.url}${path}`, {
      method: "POST",
      body: JSON.stringify({ contents: [question] }),
    });
    expect(none.status).toBe(403);
    expect((await none.json()).error.status).toBe("PERMISSION_DENIED");
    expect(fake.reported.requests).toBe(0);
  });

  it("refuses malformed requests with the API's 400 INVALID_ARGUMENT messages", async () => {
    const seen: number[] = [];
    const fake = await track(
      startFakeGemini({
        apiKey: KEY,
        script: (_r, index) => {
          seen.push(index);
          return { text: "ok" };
        },
      }),
    );
    const refused = async (body: unknown, fragment: string) => {
      const response = await post(fake, "/v1beta/models/gemini-2.5-flash:generateContent", body);
      expect(response.status).toBe(400);
      const { error } = await response.json();
      expect(error.status).toBe("INVALID_ARGUMENT");
      expect(error.code).toBe(400);
      expect(error.message).toContain(fragment);
    };
    await refused({ contents: [] }, "contents is not specified");
    await refused(
      {
        contents: [question],
        tools: [
          {
            functionDeclarations: [
              {
                name: "lookup",
                parameters: {
                  $schema: "http://json-schema.org/draft-07/schema#",
                  type: "object",
                  properties: { city: { type: "string" } },
                  additionalProperties: false,
                },
              },
            ],
          },
        ],
      },
      `Invalid JSON payload received. Unknown name "additionalProperties" at 'tools[0].function_declarations[0].parameters': Cannot find field.`,
    );
    await refused(
      {
        contents: [question],
        tools: [
          {
            functionDeclarations: [
              { name: "lookup", parameters: { $schema: "x", type: "object" } },
            ],
          },
        ],
      },
      `Unknown name "$schema"`,
    );
    await refused(
      {
        contents: [question],
        tools: [
          {
            functionDeclarations: [
              {
                name: "lookup",
                parameters: {
                  type: "object",
                  properties: { city: { type: "string", additionalProperties: {} } },
                },
              },
            ],
          },
        ],
      },
      "'tools[0].function_declarations[0].parameters.properties[0].value'",
    );
    await refused(
      {
        contents: [
          question,
          {
            role: "user",
            parts: [{ functionResponse: { name: "lookup", response: { output: "r" } } }],
          },
        ],
      },
      "Please ensure that function response turn comes immediately after a function call turn.",
    );
    await refused(
      { contents: [{ role: "assistant", parts: [{ text: "hi" }] }] },
      "Please use a valid role: user, model.",
    );
    await refused(
      { contents: [{ role: "user", parts: [{ type: "text", text: "hi" }] }] },
      `Unknown name "type" at 'contents[0].parts[0]'`,
    );
    await refused(
      { contents: [question], generationConfig: { max_tokens: 5 } },
      `Unknown name "max_tokens"`,
    );
    expect(seen).toEqual([]);
  });

  it("counts tokens and fails as scripted (429 RESOURCE_EXHAUSTED with RetryInfo, 404 NOT_FOUND)", async () => {
    const fake = await track(
      startFakeGemini({
        apiKey: KEY,
        script: (_r, index) =>
          index === 0
            ? { fail: { status: 429, retryAfterSeconds: 12 } }
            : { fail: { status: 404 } },
      }),
    );
    const counted = await post(fake, "/v1beta/models/gemini-2.5-flash:countTokens", {
      contents: [question],
    });
    expect(await counted.json()).toEqual({
      totalTokens: estimateUsage(fake.requests[0]!.body, {}).input,
      promptTokensDetails: [
        { modality: "TEXT", tokenCount: estimateUsage(fake.requests[0]!.body, {}).input },
      ],
    });
    const limited = await post(
      fake,
      "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
      {
        contents: [question],
      },
    );
    expect(limited.status).toBe(429);
    expect((await limited.json()).error).toMatchObject({
      code: 429,
      status: "RESOURCE_EXHAUSTED",
      details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "12s" }],
    });
    const missing = await post(fake, "/v1beta/models/gemini-9:generateContent", {
      contents: [question],
    });
    expect(missing.status).toBe(404);
    expect((await missing.json()).error).toMatchObject({
      status: "NOT_FOUND",
      message: expect.stringContaining("models/gemini-9 is not found"),
    });
    expect(fake.reported).toEqual({ inputTokens: 0, outputTokens: 0, requests: 0 });
  });
});

describe("fake OpenAI-compatible server", () => {
  it("serves chat completions and the model list under its prefix, with no /responses", async () => {
    const fake = await track(
      startFakeOpenAICompatible({
        apiKey: KEY,
        script: () => ({ text: "compatible hello" }),
        models: ["qwen3-coder"],
      }),
    );
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v1$/);
    const client = new OpenAI({ baseURL: fake.url, apiKey: KEY, maxRetries: 0 });
    // Such servers take max_tokens whatever the model is called.
    const done = await client.chat.completions.create({
      model: "openai/gpt-5",
      max_tokens: 20,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(done.choices[0]!.message.content).toBe("compatible hello");
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["qwen3-coder"]);
    const noResponses = await rejection(client.responses.create({ model: "m", input: "hi" }));
    expect(noResponses).toBeInstanceOf(OpenAI.NotFoundError);
    const wrong = new OpenAI({ baseURL: fake.url, apiKey: "nope", maxRetries: 0 });
    expect(
      await rejection(
        wrong.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      ),
    ).toBeInstanceOf(OpenAI.AuthenticationError);
    const tools = await rejection(
      client.chat.completions.create({
        model: "m",
        messages: [
          { role: "user", content: "hi" },
          { role: "tool", tool_call_id: "call_1", content: "r" },
        ],
      }),
    );
    expect(tools).toBeInstanceOf(OpenAI.BadRequestError);
    expect(fake.requests.map((r: RecordedRequest) => r.path)).toEqual([
      "/api/v1/chat/completions",
      "/api/v1/models",
      "/api/v1/responses",
      "/api/v1/chat/completions",
      "/api/v1/chat/completions",
    ]);
  });

  it("checks no key when given none, and takes another prefix", async () => {
    const fake = await track(
      startFakeOpenAICompatible({ script: () => ({ text: "local" }), pathPrefix: "/v1" }),
    );
    expect(fake.url).toMatch(/\/v1$/);
    const client = new OpenAI({ baseURL: fake.url, apiKey: "anything", maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "llama3",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("local");
    expect(usage?.prompt_tokens).toBe(
      estimateUsage(fake.requests[0]!.body, { text: "local" }).input,
    );
    expect(fake.reported.requests).toBe(1);
  });
});
