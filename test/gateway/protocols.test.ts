import { createAnthropic } from "@ai-sdk/anthropic";
import Anthropic from "@anthropic-ai/sdk";
import { generateText } from "ai";
import OpenAI from "openai";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundledPrices, Gateway, type RunModelAccess } from "../../src/gateway/index.ts";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { type RunningSimulator, scriptedPolicy, startSimulator } from "../../src/sim/index.ts";

// Every conversation: a tool call first, then a closing text that follows the tool result.
const policy = scriptedPolicy([
  { content: "Let me look.", toolCalls: [{ name: "lookup", arguments: { city: "Oslo" } }] },
  { content: "It is sunny in Oslo, 21 degrees." },
]);

let ledger: Ledger;
let sim: RunningSimulator;
let gateway: Gateway;
let runId: number;
let access: RunModelAccess;

beforeAll(async () => {
  ledger = await openLedger({ kind: "memory" });
  sim = await startSimulator({ policy });
  const upstream = { baseURL: sim.rootUrl, apiKey: "provider-key", auth: "bearer" as const };
  gateway = new Gateway({
    ledger,
    logger: pino({ level: "silent" }),
    prices: bundledPrices,
    limits: {},
    upstreams: {
      "openai-chat": upstream,
      "anthropic-messages": { ...upstream, auth: "x-api-key" },
      "openai-responses": upstream,
      gemini: { ...upstream, auth: "x-goog-api-key" },
    },
  });
  await gateway.listen();
  await ledger.addOrders([{ title: "protocols" }]);
  const claim = await ledger.claimNext({
    workerId: "w",
    leaseMs: 60_000,
    agent: "t",
    model: "claude-sonnet-4-5",
  });
  runId = claim!.run.id;
  access = await gateway.openRun({ runId, orderId: claim!.order.id });
});

afterAll(async () => {
  await gateway.close();
  await sim.close();
  await ledger.close();
});

/** The gateway's metering for everything so far must equal what the simulator itself counted. */
async function expectMeteredExactly() {
  await gateway.meter.flush();
  const rows = (await ledger.metering.listModelRequests(runId)).filter((r) => r.status === 200);
  expect(rows.reduce((s, r) => s + r.input_tokens, 0)).toBe(sim.stats.promptTokens);
  expect(rows.reduce((s, r) => s + r.output_tokens, 0)).toBe(sim.stats.completionTokens);
  expect(rows.every((r) => !r.usage_estimated)).toBe(true);
  return rows;
}

const anthropicTool = {
  name: "lookup",
  description: "Look up the weather",
  input_schema: {
    type: "object" as const,
    properties: { city: { type: "string" } },
    required: ["city"],
  },
};

describe("through the gateway, with the official clients", () => {
  it("Anthropic Messages: tool_use round trip, not streamed, then streamed; token counting", async () => {
    // The SDK's baseURL has no /v1: it adds /v1/messages itself.
    const client = new Anthropic({ apiKey: access.apiKey, baseURL: gateway.url, maxRetries: 0 });
    const question: Anthropic.MessageParam = { role: "user", content: "Weather in Oslo?" };
    const first = await client.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 512,
      tools: [anthropicTool],
      messages: [question],
    });
    expect(first.stop_reason).toBe("tool_use");
    const use = first.content.find((b) => b.type === "tool_use");
    expect(use).toMatchObject({ name: "lookup", input: { city: "Oslo" } });
    const followUp: Anthropic.MessageParam[] = [
      question,
      { role: "assistant", content: first.content },
      {
        role: "user",
        content: [
          {
            type: "tool_result",
            tool_use_id: use!.type === "tool_use" ? use!.id : "",
            content: "sunny",
          },
        ],
      },
    ];
    const stream = client.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 512,
      tools: [anthropicTool],
      messages: followUp,
    });
    const final = await stream.finalMessage();
    expect(final.content[0]).toMatchObject({
      type: "text",
      text: "It is sunny in Oslo, 21 degrees.",
    });
    expect(final.usage.output_tokens).toBeGreaterThan(0);
    const counted = await client.messages.countTokens({
      model: "claude-sonnet-4-5",
      messages: [question],
    });
    expect(counted.input_tokens).toBeGreaterThan(0);
    const rows = await expectMeteredExactly();
    expect(rows.filter((r) => r.protocol === "anthropic-messages").map((r) => r.stream)).toEqual([
      false,
      true,
    ]);
  });

  it("OpenAI Responses: function call round trip, not streamed, then streamed", async () => {
    const client = new OpenAI({ apiKey: access.apiKey, baseURL: access.baseURL, maxRetries: 0 });
    const tools: OpenAI.Responses.Tool[] = [
      {
        type: "function",
        name: "lookup",
        strict: false,
        parameters: { type: "object", properties: { city: { type: "string" } } },
      },
    ];
    const first = await client.responses.create({
      model: "gpt-5",
      input: "Weather in Oslo?",
      tools,
    });
    const call = first.output.find((item) => item.type === "function_call");
    expect(call).toMatchObject({ name: "lookup" });
    const input: OpenAI.Responses.ResponseInput = [
      { role: "user", content: "Weather in Oslo?" },
      call as OpenAI.Responses.ResponseFunctionToolCall,
      {
        type: "function_call_output",
        call_id: (call as OpenAI.Responses.ResponseFunctionToolCall).call_id,
        output: "sunny",
      },
    ];
    const stream = await client.responses.create({ model: "gpt-5", input, tools, stream: true });
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream)
      if (event.type === "response.completed") completed = event.response;
    const message = completed?.output.find((item) => item.type === "message");
    expect(message?.type === "message" && message.content[0]).toMatchObject({
      type: "output_text",
      text: "It is sunny in Oslo, 21 degrees.",
    });
    const rows = await expectMeteredExactly();
    expect(rows.filter((r) => r.protocol === "openai-responses").map((r) => r.stream)).toEqual([
      false,
      true,
    ]);
  });

  it("OpenAI Chat Completions: streamed tool call", async () => {
    const client = new OpenAI({ apiKey: access.apiKey, baseURL: access.baseURL, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "gpt-5",
      stream: true,
      messages: [{ role: "user", content: "Weather in Oslo?" }],
      tools: [
        {
          type: "function",
          function: { name: "lookup", parameters: { type: "object", properties: {} } },
        },
      ],
    });
    let args = "";
    for await (const chunk of stream)
      args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "";
    expect(JSON.parse(args)).toEqual({ city: "Oslo" });
    await expectMeteredExactly();
  });

  it("the ai SDK's Anthropic provider works through it", async () => {
    const anthropic = createAnthropic({ baseURL: access.baseURL, apiKey: access.apiKey });
    const result = await generateText({
      model: anthropic("claude-haiku-4-5"),
      messages: [
        { role: "user", content: "Weather in Oslo?" },
        {
          role: "assistant",
          content: [
            { type: "tool-call", toolCallId: "t1", toolName: "lookup", input: { city: "Oslo" } },
          ],
        },
        {
          role: "tool",
          content: [
            {
              type: "tool-result",
              toolCallId: "t1",
              toolName: "lookup",
              output: { type: "text", value: "sunny" },
            },
          ],
        },
      ],
    });
    expect(result.text).toBe("It is sunny in Oslo, 21 degrees.");
    await expectMeteredExactly();
  });

  it("Gemini API: function call round trip, not streamed (key in the header), then streamed (key in ?key=)", async () => {
    // No official Gemini client is a dependency (Gemini CLI bundles its own): raw fetch, as it sends.
    const question = { role: "user", parts: [{ text: "Weather in Oslo?" }] };
    const tools = [{ functionDeclarations: [{ name: "lookup", parameters: { type: "object" } }] }];
    const first = await fetch(`${gateway.url}/v1beta/models/gemini-2.5-pro:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": access.apiKey },
      body: JSON.stringify({ contents: [question], tools }),
    });
    expect(first.status).toBe(200);
    const reply = (await first.json()) as {
      candidates: { content: { role: string; parts: Record<string, unknown>[] } }[];
    };
    const call = reply.candidates[0]!.content.parts.find((p) => p.functionCall)?.functionCall as {
      id: string;
      name: string;
    };
    expect(call).toMatchObject({ name: "lookup", args: { city: "Oslo" } });
    const url = `${gateway.url}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=${access.apiKey}`;
    const second = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        contents: [
          question,
          reply.candidates[0]!.content,
          {
            role: "user",
            parts: [
              { functionResponse: { id: call.id, name: "lookup", response: { output: "21C" } } },
            ],
          },
        ],
        tools,
      }),
    });
    expect(second.status).toBe(200);
    const text = (await second.text())
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)))
      .flatMap((chunk) =>
        chunk.candidates[0].content.parts.map((p: { text?: string }) => p.text ?? ""),
      )
      .join("");
    expect(text).toBe("It is sunny in Oslo, 21 degrees.");
    const rows = (await expectMeteredExactly()).filter((r) => r.protocol === "gemini");
    expect(rows.map((r) => [r.model, r.stream])).toEqual([
      ["gemini-2.5-pro", false],
      ["gemini-2.5-pro", true],
    ]);
    expect(sim.stats.byProtocol.gemini.requests).toBe(2);
  });

  it("answers a bad key in each protocol's own error shape", async () => {
    const anthropic = new Anthropic({
      apiKey: "nsk-run1-forged",
      baseURL: gateway.url,
      maxRetries: 0,
    });
    await expect(
      anthropic.messages.create({
        model: "claude-sonnet-4-5",
        max_tokens: 10,
        messages: [{ role: "user", content: "x" }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    const raw = await fetch(`${gateway.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": "nope" },
      body: "{}",
    });
    expect(await raw.json()).toMatchObject({
      type: "error",
      error: { type: "authentication_error" },
    });
    const openai = new OpenAI({ apiKey: "nope", baseURL: access.baseURL, maxRetries: 0 });
    await expect(openai.responses.create({ model: "gpt-5", input: "x" })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const gemini = await fetch(
      `${gateway.url}/v1beta/models/gemini-2.5-pro:generateContent?key=nope`,
      {
        method: "POST",
        body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "x" }] }] }),
      },
    );
    expect(gemini.status).toBe(401);
    expect(await gemini.json()).toMatchObject({ error: { code: 401, status: "UNAUTHENTICATED" } });
  });
});
