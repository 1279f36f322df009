import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { parseSSE, safeJson } from "../../src/protocols/index.ts";
import {
  createSimulatorApp,
  type RunningSimulator,
  SimulatorError,
  type StartSimulatorOptions,
  startSimulator,
} from "../../src/sim/index.ts";

let sim: RunningSimulator | undefined;

afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const answer = "The quick brown fox jumps over the lazy dog, twice, for the benefit of all.";

async function start(options: Partial<StartSimulatorOptions> = {}) {
  sim = await startSimulator({ policy: () => ({ content: answer }), ...options });
  return sim;
}

const openai = (url: string, extra: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}) =>
  new OpenAI({ apiKey: "sk-test", baseURL: url, maxRetries: 0, ...extra });

const ask = { model: "m", messages: [{ role: "user" as const, content: "hi" }] };

function postChat(url: string, stream = false) {
  return fetch(`${url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...ask, stream }),
  });
}

describe("HTTP faults", () => {
  it("gives scripted request 1 a 429 the openai client sees as a RateLimitError", async () => {
    const s = await start({ faults: { requests: { 1: 429 } } });
    const client = openai(s.url);
    const error = await client.chat.completions.create(ask).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const limited = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(limited.code).toBe("rate_limit_exceeded");
    const ok = await client.chat.completions.create(ask);
    expect(ok.choices[0]?.message.content).toBe(answer);
    expect(s.stats.faults.rate_limit).toBe(1);
    expect(s.stats.requests).toBe(1);
  });

  it("lets the Anthropic client retry past a 429 after the retry-after it was given", async () => {
    const s = await start({
      faults: { requests: { 1: { kind: "rate_limit", retryAfterSeconds: 0.05 } } },
    });
    const client = new Anthropic({ apiKey: "k", baseURL: s.rootUrl, maxRetries: 2 });
    const reply = await client.messages.create({ ...ask, max_tokens: 100 });
    expect(reply.content).toEqual([{ type: "text", text: answer }]);
    expect(s.stats.faults.rate_limit).toBe(1);
    expect(s.stats.byProtocol["anthropic-messages"].requests).toBe(1);
  });

  it("answers a 500 (or a chosen 5xx) in each protocol's error shape", async () => {
    const s = await start({
      faults: { requests: { 1: 500, 2: { kind: "server_error", status: 529 } } },
    });
    const error = await openai(s.url)
      .chat.completions.create(ask)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    const overloaded = await fetch(`${s.url}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...ask, max_tokens: 5 }),
    });
    expect(overloaded.status).toBe(529);
    expect((await overloaded.json()).error.type).toBe("overloaded_error");
    expect(s.stats.faults.server_error).toBe(2);
  });

  it("draws faults by seeded probability, the same way every time", async () => {
    const pattern = async () => {
      const s = await start({ faults: { seed: 7, rates: { rate_limit: 0.3, server_error: 0.2 } } });
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) statuses.push((await postChat(s.url)).status);
      await s.close();
      sim = undefined;
      return statuses;
    };
    const first = await pattern();
    expect(await pattern()).toEqual(first);
    expect(first).toContain(429);
    expect(first).toContain(500);
    expect(first).toContain(200);
  });

  it("refuses bad fault options up front", () => {
    const policy = () => ({});
    expect(() => createSimulatorApp({ policy, faults: { rates: { stall: 1.5 } } })).toThrow(
      /stall must be between 0 and 1/,
    );
    expect(() =>
      createSimulatorApp({ policy, faults: { rates: { stall: 0.6, drop: 0.6 } } }),
    ).toThrow(/must not exceed 1/);
    expect(() => createSimulatorApp({ policy, faults: { requests: { 0: 429 } } })).toThrow(
      SimulatorError,
    );
    expect(() => createSimulatorApp({ policy, faults: { requests: { 1: 404 } } })).toThrow(/404/);
    expect(() => createSimulatorApp({ policy, latency: { tokensPerSecond: 0 } })).toThrow(
      /tokensPerSecond/,
    );
  });
});

describe("stream faults", () => {
  it("stalls a stream after its first events until the client gives up", async () => {
    const s = await start({ faults: { requests: { 1: "stall" } } });
    const stream = await openai(s.url).chat.completions.create(
      { ...ask, stream: true },
      { signal: AbortSignal.timeout(300) },
    );
    const received: string[] = [];
    let finished = false;
    const started = Date.now();
    // The SDK ends the iteration quietly when its signal aborts: giving up looks like a short stream.
    for await (const chunk of stream) {
      received.push(chunk.choices[0]?.delta.content ?? "");
      finished ||= chunk.choices[0]?.finish_reason != null;
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(received.length).toBe(2);
    expect(finished).toBe(false);
    expect(received.join("").length).toBeLessThan(answer.length);
    expect(s.stats.faults.stall).toBe(1);
    expect(s.stats.requests).toBe(0);
  });

  it("never answers a stalled non-streamed request; the client's timeout fires", async () => {
    const s = await start({ faults: { requests: { 1: "stall" } } });
    const error = await openai(s.url, { timeout: 200 })
      .chat.completions.create(ask)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
  });

  it("stalls an Anthropic stream after message_start; the SDK is aborted by its signal", async () => {
    const s = await start({ faults: { requests: { 1: { kind: "stall", afterEvents: 1 } } } });
    const client = new Anthropic({ apiKey: "k", baseURL: s.rootUrl, maxRetries: 0 });
    const types: string[] = [];
    const started = Date.now();
    const stream = await client.messages.create(
      { ...ask, max_tokens: 100, stream: true },
      { signal: AbortSignal.timeout(200) },
    );
    for await (const event of stream) types.push(event.type);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(types).toEqual(["message_start"]);
  });

  it("closes promptly while streams and whole replies are stalled", async () => {
    const s = await start({ faults: { rates: { stall: 1 } } });
    const streamed = await postChat(s.url, true);
    const reading = streamed.text().catch((e: unknown) => e);
    const whole = postChat(s.url).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await s.close();
    sim = undefined;
    expect(await reading).toBeInstanceOf(Error);
    expect(await whole).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("sends a malformed SSE event the client cannot parse", async () => {
    const s = await start({ faults: { requests: { 1: "malformed_json", 2: "malformed_json" } } });
    const raw = await (await postChat(s.url, true)).text();
    const events = parseSSE(raw);
    const unreadable = events.filter((e) => e.data !== "[DONE]" && safeJson(e.data) === undefined);
    expect(unreadable).toHaveLength(1);
    expect(events.at(-1)?.data).toBe("[DONE]");
    const error = await (async () => {
      const client = openai(s.url, { logLevel: "off" });
      const stream = await client.chat.completions.create({ ...ask, stream: true });
      for await (const _ of stream) {
        // drain
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(s.stats.faults.malformed_json).toBe(2);
  });

  it("cuts a non-streamed body short for malformed_json", async () => {
    const s = await start({ faults: { requests: { 1: "malformed_json" } } });
    const response = await postChat(s.url);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(safeJson(text)).toBeUndefined();
    expect(text.startsWith('{"id":"chatcmpl-')).toBe(true);
  });

  it("drops the connection mid-stream and mid-body", async () => {
    const s = await start({ faults: { requests: { 1: "drop", 2: "drop" } } });
    const response = await postChat(s.url, true);
    expect(response.status).toBe(200);
    const streamed = await response.text().catch((e: unknown) => e);
    expect(streamed).toBeInstanceOf(Error);
    const whole = await postChat(s.url)
      .then((r) => r.text())
      .catch((e: unknown) => e);
    expect(whole).toBeInstanceOf(Error);
    expect(s.stats.faults.drop).toBe(2);
    // The simulator itself carries on.
    expect((await postChat(s.url)).status).toBe(200);
  });

  it("lets a policy reply ask for a fault", async () => {
    const s = await start({
      policy: (_request, ctx) => (ctx.requestIndex === 0 ? { fault: 503 } : { content: "ok" }),
    });
    expect((await postChat(s.url)).status).toBe(503);
    expect((await postChat(s.url)).status).toBe(200);
  });
});

describe("latency", () => {
  // 400 characters = 100 tokens; at 500 tokens/s the stream takes 200 ms after the first token.
  const long = "abcd".repeat(100);

  it("paces a stream: first token after firstTokenMs, the rest at tokensPerSecond", async () => {
    const s = await start({
      policy: () => ({ content: long.replace(/(.{20})/g, "$1 ") }),
      latency: { firstTokenMs: 150, tokensPerSecond: 500 },
    });
    const started = Date.now();
    const response = await postChat(s.url, true);
    const reader = response.body!.getReader();
    const arrivals: number[] = [];
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
      arrivals.push(Date.now() - started);
    }
    expect(arrivals[0]).toBeGreaterThanOrEqual(140);
    expect(arrivals[0]).toBeLessThan(300);
    expect(arrivals.at(-1)).toBeGreaterThanOrEqual(150 + 200 - 20);
    expect(arrivals.length).toBeGreaterThan(5);
  });

  it("makes a whole reply wait the equivalent time", async () => {
    const s = await start({
      policy: () => ({ content: long }),
      latency: { firstTokenMs: 100, tokensPerSecond: 1000 },
    });
    const started = Date.now();
    expect((await postChat(s.url)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100 + 100 - 10);
  });
});

describe("output limits", () => {
  it("cuts a reply at max_tokens, as a real model stops", async () => {
    const s = await start();
    const client = new Anthropic({ apiKey: "k", baseURL: s.rootUrl, maxRetries: 0 });
    const reply = await client.messages.create({ ...ask, max_tokens: 5 });
    expect(reply.stop_reason).toBe("max_tokens");
    expect(reply.usage.output_tokens).toBe(5);
    expect(reply.content).toEqual([{ type: "text", text: answer.slice(0, 20) }]);
    const chat = await openai(s.url).chat.completions.create({ ...ask, max_tokens: 3 });
    expect(chat.choices[0]?.finish_reason).toBe("length");
    expect(chat.usage?.completion_tokens).toBe(3);
    const response = await openai(s.url).responses.create({
      model: "m",
      input: "hi",
      max_output_tokens: 4,
    });
    expect(response.status).toBe("incomplete");
    expect(response.usage?.output_tokens).toBe(4);
    expect(s.stats.completionTokens).toBe(12);
  });
});
