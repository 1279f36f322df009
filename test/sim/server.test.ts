import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { type ChatRequest, contentText } from "../../src/protocols/index.ts";
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

function clientFor(url: string) {
  return createOpenAICompatible({ name: "sim", baseURL: url, includeUsage: true })(
    "nightshift-sim",
  );
}

function weatherTool(seen: string[]) {
  return tool({
    description: "Look up the weather",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      seen.push(city);
      return { city, forecast: "sunny" };
    },
  });
}

// The final reply quotes the tool result, proving it travelled back to the model.
const recordingPolicy = (requests: ChatRequest[]): Policy => {
  const script = scriptedPolicy([
    { content: "Checking.", toolCalls: [{ name: "weather", arguments: { city: "Oslo" } }] },
    { content: "It is sunny in Oslo." },
  ]);
  return (request, ctx) => {
    requests.push(request);
    return script(request, ctx);
  };
};

function toolResultText(request: ChatRequest | undefined): string {
  const message = request?.messages.find((m) => m.role === "tool");
  return contentText(message?.content);
}

describe("simulator with the ai SDK client", () => {
  it("runs a tool call loop without streaming and reports the simulator's usage", async () => {
    const requests: ChatRequest[] = [];
    sim = await startSimulator({ policy: recordingPolicy(requests) });
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const seen: string[] = [];
    const result = await generateText({
      model: clientFor(sim.url),
      prompt: "What is the weather in Oslo?",
      tools: { weather: weatherTool(seen) },
      stopWhen: stepCountIs(5),
    });
    expect(seen).toEqual(["Oslo"]);
    expect(result.text).toBe("It is sunny in Oslo.");
    expect(result.steps).toHaveLength(2);
    expect(toolResultText(requests[1])).toContain("sunny");
    expect(sim.stats.requests).toBe(2);
    expect(result.totalUsage.inputTokens).toBe(sim.stats.promptTokens);
    expect(result.totalUsage.outputTokens).toBe(sim.stats.completionTokens);
    expect(sim.stats.promptTokens).toBeGreaterThan(0);
  });

  it("runs the same loop streamed, with usage from the include_usage chunk", async () => {
    const requests: ChatRequest[] = [];
    sim = await startSimulator({
      policy: recordingPolicy(requests),
      latency: { firstTokenMs: 20 },
    });
    const seen: string[] = [];
    const result = streamText({
      model: clientFor(sim.url),
      prompt: "What is the weather in Oslo?",
      tools: { weather: weatherTool(seen) },
      stopWhen: stepCountIs(5),
    });
    const deltas: string[] = [];
    for await (const delta of result.textStream) deltas.push(delta);
    const usage = await result.totalUsage;
    expect(seen).toEqual(["Oslo"]);
    expect(deltas.join("")).toBe("Checking.It is sunny in Oslo.");
    expect(deltas.length).toBeGreaterThan(2);
    expect(requests.every((r) => r.stream === true && r.stream_options?.include_usage)).toBe(true);
    expect(sim.stats.requests).toBe(2);
    expect(usage.inputTokens).toBe(sim.stats.promptTokens);
    expect(usage.outputTokens).toBe(sim.stats.completionTokens);
  });

  it("passes malformed tool arguments through verbatim", async () => {
    sim = await startSimulator({
      policy: scriptedPolicy([{ toolCalls: [{ name: "weather", arguments: '{"city": ' }] }]),
    });
    const response = await fetch(`${sim.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "x", messages: [{ role: "user", content: "hi" }] }),
    });
    const body = await response.json();
    expect(body.choices[0].message.tool_calls[0].function.arguments).toBe('{"city": ');
    expect(body.choices[0].finish_reason).toBe("tool_calls");
  });
});

describe("simulator HTTP errors", () => {
  const post = (url: string, body: string) =>
    fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });

  it("answers a bad body with a provider-style 400 naming the field", async () => {
    sim = await startSimulator({ policy: scriptedPolicy([{ content: "unused" }]) });
    const response = await post(
      sim.url,
      JSON.stringify({ model: "x", messages: [{ role: "user" }] }),
    );
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.param).toBe("messages[0].content");
    expect(body.error.message).toContain("messages[0].content");
    expect(sim.stats.requests).toBe(0);
  });

  it("answers invalid JSON with a 400 and an exhausted script with a 500", async () => {
    sim = await startSimulator({ policy: scriptedPolicy([]) });
    const bad = await post(sim.url, "{not json");
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.code).toBe("invalid_json");
    const exhausted = await post(
      sim.url,
      JSON.stringify({ model: "x", messages: [{ role: "user", content: "hi" }] }),
    );
    expect(exhausted.status).toBe(500);
    expect((await exhausted.json()).error.code).toBe("script_exhausted");
  });

  it("lists models", async () => {
    sim = await startSimulator({ policy: scriptedPolicy([]) });
    const body = await (await fetch(`${sim.url}/models`)).json();
    expect(body.object).toBe("list");
    expect(body.data[0].id).toBe("nightshift-sim");
  });
});
