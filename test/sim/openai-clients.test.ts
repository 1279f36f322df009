import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
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

function recordingPolicy(requests: ChatRequest[]): Policy {
  const script = scriptedPolicy([
    {
      content: "Checking.",
      toolCalls: [
        { name: "weather", arguments: { city: "Oslo" } },
        { name: "weather", arguments: { city: "Bergen" } },
      ],
    },
    { content: "Sunny in Oslo, rain in Bergen." },
  ]);
  return (request, ctx) => {
    requests.push(request);
    return script(request, ctx);
  };
}

const client = (url: string) => new OpenAI({ apiKey: "sk-test", baseURL: url, maxRetries: 0 });

const chatTools: OpenAI.ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "weather",
      parameters: { type: "object", properties: { city: { type: "string" } } },
    },
  },
];

const forecast = (args: string) => (JSON.parse(args).city === "Oslo" ? "sunny" : "rain");

describe("simulator with openai chat.completions", () => {
  it("runs a two-call tool round trip without streaming", async () => {
    const requests: ChatRequest[] = [];
    sim = await startSimulator({ policy: recordingPolicy(requests) });
    const openai = client(sim.url);
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather?" }];
    const first = await openai.chat.completions.create({
      model: "gpt-sim",
      messages,
      tools: chatTools,
    });
    const calls = first.choices[0]?.message.tool_calls ?? [];
    expect(first.choices[0]?.finish_reason).toBe("tool_calls");
    expect(calls).toHaveLength(2);
    messages.push(first.choices[0]!.message);
    for (const call of calls) {
      if (call.type !== "function") continue;
      messages.push({
        role: "tool",
        tool_call_id: call.id,
        content: forecast(call.function.arguments),
      });
    }
    const second = await openai.chat.completions.create({
      model: "gpt-sim",
      messages,
      tools: chatTools,
    });
    expect(second.choices[0]?.message.content).toBe("Sunny in Oslo, rain in Bergen.");
    expect(
      requests[1]?.messages.filter((m) => m.role === "tool").map((m) => contentText(m.content)),
    ).toEqual(["sunny", "rain"]);
    const stats = sim.stats.byProtocol["openai-chat"];
    expect(first.usage!.prompt_tokens + second.usage!.prompt_tokens).toBe(stats.promptTokens);
    expect(first.usage!.completion_tokens + second.usage!.completion_tokens).toBe(
      stats.completionTokens,
    );
  });

  it("streams tool call deltas and a usage chunk", async () => {
    sim = await startSimulator({ policy: recordingPolicy([]) });
    const stream = await client(sim.url).chat.completions.create({
      model: "gpt-sim",
      messages: [{ role: "user", content: "Weather?" }],
      tools: chatTools,
      stream: true,
      stream_options: { include_usage: true },
    });
    const args = ["", ""];
    let usage: OpenAI.CompletionUsage | undefined;
    let text = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
        args[delta.index] += delta.function?.arguments ?? "";
      }
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe("Checking.");
    expect(args.map((a) => JSON.parse(a))).toEqual([{ city: "Oslo" }, { city: "Bergen" }]);
    expect(usage?.prompt_tokens).toBe(sim.stats.promptTokens);
    expect(usage?.completion_tokens).toBe(sim.stats.completionTokens);
  });
});

const responseTools: OpenAI.Responses.Tool[] = [
  {
    type: "function",
    name: "weather",
    parameters: { type: "object", properties: { city: { type: "string" } } },
    strict: false,
  },
];

function outputsFor(response: OpenAI.Responses.Response): OpenAI.Responses.ResponseInputItem[] {
  return response.output
    .filter((item) => item.type === "function_call")
    .map((item) => ({
      type: "function_call_output" as const,
      call_id: item.call_id,
      output: forecast(item.arguments),
    }));
}

describe("simulator with openai responses", () => {
  it("runs a function call round trip without streaming", async () => {
    const requests: ChatRequest[] = [];
    sim = await startSimulator({ policy: recordingPolicy(requests) });
    const openai = client(sim.url);
    const input: OpenAI.Responses.ResponseInput = [{ role: "user", content: "Weather?" }];
    const first = await openai.responses.create({
      model: "gpt-sim",
      instructions: "Be brief.",
      input,
      tools: responseTools,
    });
    expect(first.status).toBe("completed");
    expect(first.output_text).toBe("Checking.");
    expect(first.output.filter((i) => i.type === "function_call")).toHaveLength(2);
    const second = await openai.responses.create({
      model: "gpt-sim",
      instructions: "Be brief.",
      input: [
        ...input,
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        ...outputsFor(first),
      ],
      tools: responseTools,
    });
    expect(second.output_text).toBe("Sunny in Oslo, rain in Bergen.");
    expect(requests[1]?.messages.map((m) => m.role)).toEqual([
      "system",
      "user",
      "assistant",
      "tool",
      "tool",
    ]);
    const stats = sim.stats.byProtocol["openai-responses"];
    expect(stats.requests).toBe(2);
    expect(first.usage!.input_tokens + second.usage!.input_tokens).toBe(stats.promptTokens);
    expect(first.usage!.output_tokens + second.usage!.output_tokens).toBe(stats.completionTokens);
  });

  it("streams the round trip; the SDK's accumulated response matches the simulator's count", async () => {
    sim = await startSimulator({ policy: recordingPolicy([]), latency: { firstTokenMs: 5 } });
    const openai = client(sim.url);
    const input: OpenAI.Responses.ResponseInput = [{ role: "user", content: "Weather?" }];
    const stream = openai.responses.stream({ model: "gpt-sim", input, tools: responseTools });
    const deltas: string[] = [];
    stream.on("response.output_text.delta", (event) => deltas.push(event.delta));
    const first = await stream.finalResponse();
    expect(deltas.join("")).toBe("Checking.");
    const calls = first.output.filter((i) => i.type === "function_call");
    expect(calls.map((c) => JSON.parse(c.arguments))).toEqual([
      { city: "Oslo" },
      { city: "Bergen" },
    ]);
    const raw = await openai.responses.create({
      model: "gpt-sim",
      input: [
        ...input,
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        ...outputsFor(first),
      ],
      tools: responseTools,
      stream: true,
    });
    let completed: OpenAI.Responses.Response | undefined;
    const sequence: number[] = [];
    for await (const event of raw) {
      sequence.push(event.sequence_number);
      if (event.type === "response.completed") completed = event.response;
    }
    expect(sequence).toEqual(sequence.map((_, i) => i));
    const message = completed?.output.find((item) => item.type === "message");
    expect(message?.type === "message" && message.content[0]).toMatchObject({
      type: "output_text",
      text: "Sunny in Oslo, rain in Bergen.",
    });
    const stats = sim.stats.byProtocol["openai-responses"];
    expect(first.usage!.input_tokens + completed!.usage!.input_tokens).toBe(stats.promptTokens);
    expect(first.usage!.output_tokens + completed!.usage!.output_tokens).toBe(
      stats.completionTokens,
    );
  });

  it("refuses previous_response_id, since the simulator keeps no state", async () => {
    sim = await startSimulator({ policy: scriptedPolicy([{ content: "x" }]) });
    const error = await client(sim.url)
      .responses.create({ model: "gpt-sim", input: "hi", previous_response_id: "resp_1" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toContain("previous_response_id");
  });
});

describe("one policy, three protocols", () => {
  it("counts every protocol on its own and in the total", async () => {
    sim = await startSimulator({ policy: () => ({ content: "same answer" }) });
    const openai = client(sim.url);
    await openai.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "q" }],
    });
    await openai.responses.create({ model: "m", input: "q" });
    await fetch(`${sim.url}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "k" },
      body: JSON.stringify({
        model: "m",
        max_tokens: 9,
        messages: [{ role: "user", content: "q" }],
      }),
    });
    expect(sim.stats.requests).toBe(3);
    for (const name of ["openai-chat", "openai-responses", "anthropic-messages"] as const) {
      expect(sim.stats.byProtocol[name].requests).toBe(1);
      expect(sim.stats.byProtocol[name].completionTokens).toBe(3);
    }
  });

  it("answers Claude Code's HEAD / probe and lists models for both client families", async () => {
    sim = await startSimulator({ policy: scriptedPolicy([]), models: ["a", "b"] });
    expect((await fetch(sim.rootUrl, { method: "HEAD" })).status).toBe(200);
    expect((await fetch(`${sim.rootUrl}/`)).status).toBe(200);
    const models = await client(sim.url).models.list();
    expect(models.data.map((m) => m.id)).toEqual(["a", "b"]);
    const body = await (await fetch(`${sim.url}/models`)).json();
    expect(body).toMatchObject({ has_more: false, first_id: "a", last_id: "b" });
    expect(body.data[0].type).toBe("model");
  });
});
