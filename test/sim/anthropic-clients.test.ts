import { createAnthropic } from "@ai-sdk/anthropic";
import Anthropic from "@anthropic-ai/sdk";
import { generateText, stepCountIs, tool } from "ai";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { type ChatRequest, contentText, parseSSE } from "../../src/protocols/index.ts";
import {
  type Policy,
  type RunningSimulator,
  scriptedPolicy,
  startSimulator,
} from "../../src/sim/index.ts";

let sim: RunningSimulator | undefined;

afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const weatherTool = {
  name: "weather",
  description: "Look up the weather",
  input_schema: {
    type: "object" as const,
    properties: { city: { type: "string" } },
    required: ["city"],
  },
};

// The final reply quotes the tool result, proving it travelled back to the model.
function recordingPolicy(requests: ChatRequest[]): Policy {
  const script = scriptedPolicy([
    { content: "Checking.", toolCalls: [{ name: "weather", arguments: { city: "Oslo" } }] },
    { content: "It is sunny in Oslo." },
  ]);
  return (request, ctx) => {
    requests.push(request);
    return script(request, ctx);
  };
}

function client(url: string) {
  return new Anthropic({ apiKey: "sk-ant-test", baseURL: url, maxRetries: 0 });
}

const question: Anthropic.MessageParam = { role: "user", content: "Weather in Oslo?" };

function toolResultFor(message: Anthropic.Message): Anthropic.MessageParam {
  const use = message.content.find((b) => b.type === "tool_use");
  if (!use) throw new Error("no tool_use block");
  return {
    role: "user",
    content: [{ type: "tool_result", tool_use_id: use.id, content: "sunny, 21C" }],
  };
}

describe("simulator with @anthropic-ai/sdk", () => {
  it("runs a tool_use round trip without streaming; usage equals the simulator's count", async () => {
    const requests: ChatRequest[] = [];
    sim = await startSimulator({ policy: recordingPolicy(requests) });
    const anthropic = client(sim.rootUrl);
    const params = {
      model: "claude-sim",
      max_tokens: 1024,
      system: "You are terse.",
      tools: [weatherTool],
    };
    const first = await anthropic.messages.create({ ...params, messages: [question] });
    expect(first.stop_reason).toBe("tool_use");
    expect(first.content[0]).toEqual({ type: "text", text: "Checking." });
    expect(first.content[1]).toMatchObject({
      type: "tool_use",
      name: "weather",
      input: { city: "Oslo" },
    });
    expect((first.content[1] as Anthropic.ToolUseBlock).id).toMatch(/^toolu_/);
    const second = await anthropic.messages.create({
      ...params,
      messages: [question, { role: "assistant", content: first.content }, toolResultFor(first)],
    });
    expect(second.stop_reason).toBe("end_turn");
    expect(second.content).toEqual([{ type: "text", text: "It is sunny in Oslo." }]);
    expect(contentText(requests[1]?.messages.find((m) => m.role === "tool")?.content)).toBe(
      "sunny, 21C",
    );
    expect(requests[0]?.messages[0]).toEqual({ role: "system", content: "You are terse." });
    const stats = sim.stats.byProtocol["anthropic-messages"];
    expect(stats.requests).toBe(2);
    expect(first.usage.input_tokens + second.usage.input_tokens).toBe(stats.promptTokens);
    expect(first.usage.output_tokens + second.usage.output_tokens).toBe(stats.completionTokens);
    expect(sim.stats.promptTokens).toBe(stats.promptTokens);
  });

  it("streams the same round trip; the SDK's accumulated messages carry the right usage", async () => {
    const requests: ChatRequest[] = [];
    sim = await startSimulator({
      policy: recordingPolicy(requests),
      latency: { firstTokenMs: 10 },
    });
    const anthropic = client(sim.rootUrl);
    const params = { model: "claude-sim", max_tokens: 1024, tools: [weatherTool] };
    const stream = anthropic.messages.stream({ ...params, messages: [question] });
    const texts: string[] = [];
    stream.on("text", (delta) => texts.push(delta));
    const first = await stream.finalMessage();
    expect(texts.join("")).toBe("Checking.");
    expect(first.content[1]).toMatchObject({ type: "tool_use", input: { city: "Oslo" } });
    const second = await anthropic.messages
      .stream({
        ...params,
        messages: [question, { role: "assistant", content: first.content }, toolResultFor(first)],
      })
      .finalMessage();
    expect(second.content).toEqual([{ type: "text", text: "It is sunny in Oslo." }]);
    expect(requests.every((r) => r.stream === true)).toBe(true);
    const stats = sim.stats.byProtocol["anthropic-messages"];
    expect(first.usage.input_tokens + second.usage.input_tokens).toBe(stats.promptTokens);
    expect(first.usage.output_tokens + second.usage.output_tokens).toBe(stats.completionTokens);
  });

  it("streams raw events in Anthropic's order", async () => {
    sim = await startSimulator({ policy: recordingPolicy([]) });
    const events = await client(sim.rootUrl).messages.create({
      model: "claude-sim",
      max_tokens: 100,
      messages: [question],
      tools: [weatherTool],
      stream: true,
    });
    const types: string[] = [];
    for await (const event of events) types.push(event.type);
    expect(types[0]).toBe("message_start");
    expect(types.slice(-2)).toEqual(["message_delta", "message_stop"]);
    expect(types).toContain("content_block_delta");
  });

  it("answers a raw Claude Code style request (?beta=true) with named SSE events", async () => {
    sim = await startSimulator({ policy: recordingPolicy([]) });
    const response = await fetch(`${sim.rootUrl}/v1/messages?beta=true`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-api-key": "k",
        "anthropic-version": "2023-06-01",
      },
      body: JSON.stringify({
        model: "claude-sim",
        max_tokens: 32000,
        stream: true,
        system: [{ type: "text", text: "cwd: /work", cache_control: { type: "ephemeral" } }],
        messages: [{ role: "user", content: [{ type: "text", text: "Weather in Oslo?" }] }],
        tools: [weatherTool],
        thinking: { type: "disabled" },
      }),
    });
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const text = await response.text();
    expect(text.startsWith("event: message_start\ndata: {")).toBe(true);
    const events = parseSSE(text);
    expect(events.every((e) => e.event === JSON.parse(e.data).type)).toBe(true);
    expect(events.map((e) => e.event)).toEqual([
      "message_start",
      "ping",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
  });

  it("counts tokens with the same figure a reply's usage reports", async () => {
    sim = await startSimulator({ policy: scriptedPolicy([{ content: "ok" }]) });
    const anthropic = client(sim.rootUrl);
    const body = { model: "claude-sim", messages: [question], tools: [weatherTool], system: "x" };
    const counted = await anthropic.messages.countTokens(body);
    const reply = await anthropic.messages.create({ ...body, max_tokens: 50 });
    expect(counted.input_tokens).toBe(reply.usage.input_tokens);
    expect(counted.input_tokens).toBeGreaterThan(10);
    expect(sim.stats.tokenCountRequests).toBe(1);
    expect(sim.stats.requests).toBe(1);
  });

  it("sends a key in x-api-key or as a Bearer token (ANTHROPIC_AUTH_TOKEN)", async () => {
    sim = await startSimulator({ policy: scriptedPolicy([{ content: "ok" }]) });
    const viaToken = new Anthropic({ authToken: "tok", apiKey: null, baseURL: sim.rootUrl });
    const reply = await viaToken.messages.create({
      model: "claude-sim",
      max_tokens: 10,
      messages: [question],
    });
    expect(reply.content).toEqual([{ type: "text", text: "ok" }]);
  });

  it("answers a bad body with an Anthropic-style 400 naming the field", async () => {
    sim = await startSimulator({ policy: scriptedPolicy([]) });
    const error = await client(sim.rootUrl)
      .messages.create({ model: "claude-sim", messages: [question] } as never)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    const bad = error as InstanceType<typeof Anthropic.BadRequestError>;
    expect(bad.error).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    expect(bad.message).toContain("max_tokens");
    expect(sim.stats.requests).toBe(0);
  });
});

describe("simulator with the ai SDK's Anthropic provider", () => {
  it("runs a tool loop and reports the simulator's usage", async () => {
    const requests: ChatRequest[] = [];
    sim = await startSimulator({ policy: recordingPolicy(requests) });
    const seen: string[] = [];
    const result = await generateText({
      model: createAnthropic({ baseURL: sim.url, apiKey: "sk-ant-test" })("claude-sim"),
      prompt: "Weather in Oslo?",
      maxOutputTokens: 1000,
      tools: {
        weather: tool({
          description: "Look up the weather",
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => {
            seen.push(city);
            return { city, forecast: "sunny" };
          },
        }),
      },
      stopWhen: stepCountIs(5),
    });
    expect(seen).toEqual(["Oslo"]);
    expect(result.text).toBe("It is sunny in Oslo.");
    expect(contentText(requests[1]?.messages.find((m) => m.role === "tool")?.content)).toContain(
      "sunny",
    );
    const stats = sim.stats.byProtocol["anthropic-messages"];
    expect(stats.requests).toBe(2);
    expect(result.totalUsage.inputTokens).toBe(stats.promptTokens);
    expect(result.totalUsage.outputTokens).toBe(stats.completionTokens);
  });
});
