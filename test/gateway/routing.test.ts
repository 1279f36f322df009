import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { providerUpstream } from "../../src/cli/models.ts";
import { providerSettings } from "../../src/config/index.ts";
import {
  type ConfiguredProvider,
  Gateway,
  modelRouter,
  parsePriceTable,
} from "../../src/gateway/index.ts";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import {
  type FakeProvider,
  type FakeScript,
  startFakeAnthropic,
  startFakeOpenAI,
  startFakeOpenAICompatible,
} from "../support/fake-providers.ts";

// The gateway in front of several real-looking providers: which request goes where, under which
// name and key, translated when the provider lacks the agent's protocol, metered as the provider counted.

const prices = parsePriceTable(
  JSON.stringify({
    as_of: "2026-11-30",
    models: {
      "claude-sonnet-4-5": { input: 3, output: 15 },
      "gpt-5": { input: 1.25, output: 10 },
      "qwen3-coder": { input: 0.2, output: 0.8 },
    },
  }),
  "test prices",
);

const KEYS = { ANTHROPIC_API_KEY: "sk-ant-provider", OPENAI_API_KEY: "sk-openai-provider" };

let ledger: Ledger;
let gateway: Gateway;
const fakes: FakeProvider[] = [];

afterEach(async () => {
  await gateway?.close();
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
  await ledger?.close();
});

const hello: FakeScript = () => ({ text: "hello from the provider" });

function provider(
  name: string,
  section: Parameters<typeof providerSettings>[1],
  env: NodeJS.ProcessEnv = KEYS,
): ConfiguredProvider {
  const settings = providerSettings(name, section);
  return { ...settings, upstream: providerUpstream(settings, env) };
}

async function start(
  providers: ConfiguredProvider[],
  models: Record<string, { provider: string; model?: string }> = {},
) {
  ledger = await openLedger({ kind: "memory" });
  gateway = new Gateway({
    ledger,
    logger: pino({ level: "silent" }),
    prices,
    limits: {},
    router: modelRouter(providers, models),
    retry: { attempts: 1 },
  });
  await gateway.listen();
  const [order] = await ledger.addOrders([{ title: "routing" }]);
  const claim = await ledger.claimNext({ workerId: "t", leaseMs: 60_000, agent: "x", model: "m" });
  if (!claim || !order) throw new Error("no claim");
  const access = await gateway.openRun({ runId: claim.run.id, orderId: order.id });
  return { runId: claim.run.id, access };
}

async function track<T extends FakeProvider>(fake: Promise<T>): Promise<T> {
  const started = await fake;
  fakes.push(started);
  return started;
}

/** A Chat-only server that Claude's "claude-sonnet-4-5" is routed to as `upstreamModel`. */
async function startChatOnly(script: FakeScript, upstreamModel: string) {
  const server = await track(startFakeOpenAICompatible({ apiKey: "local", script }));
  const started = await start(
    [
      provider(
        "local",
        { kind: "openai-compatible", base_url: server.url, api_key_env: "LOCAL_KEY" },
        { LOCAL_KEY: "local" },
      ),
    ],
    { "claude-sonnet-4-5": { provider: "local", model: upstreamModel } },
  );
  const claude = new Anthropic({
    baseURL: started.access.baseURL.replace(/\/v1$/, ""),
    apiKey: started.access.apiKey,
    maxRetries: 0,
  });
  return { server, claude, runId: started.runId };
}

describe("routing by model across providers", () => {
  it("sends claude-* to Anthropic and gpt-* to OpenAI, each with its own key, never the run's", async () => {
    const anthropic = await track(
      startFakeAnthropic({ apiKey: KEYS.ANTHROPIC_API_KEY, script: hello }),
    );
    const openai = await track(startFakeOpenAI({ apiKey: KEYS.OPENAI_API_KEY, script: hello }));
    const { access } = await start([
      provider("anthropic", { base_url: anthropic.url }),
      provider("openai", { base_url: openai.url }),
    ]);

    const claude = new Anthropic({
      baseURL: access.baseURL.replace(/\/v1$/, ""),
      apiKey: access.apiKey,
      maxRetries: 0,
    });
    const message = await claude.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 50,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(message.content).toEqual([{ type: "text", text: "hello from the provider" }]);

    const gpt = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    const completion = await gpt.chat.completions.create({
      model: "gpt-5",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(completion.choices[0]?.message.content).toBe("hello from the provider");

    expect(anthropic.requests.map((r) => r.headers["x-api-key"])).toEqual([KEYS.ANTHROPIC_API_KEY]);
    expect(openai.requests.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${KEYS.OPENAI_API_KEY}`,
    ]);
    for (const r of [...anthropic.requests, ...openai.requests]) {
      expect(JSON.stringify(r.headers)).not.toContain(access.apiKey);
    }
  });

  it("a [models] entry picks the provider and renames the model; metering uses the provider's count", async () => {
    const router = await track(
      startFakeOpenAICompatible({
        apiKey: "sk-or-provider",
        script: () => ({ text: "routed", usage: { input: 321, output: 7 } }),
      }),
    );
    const { access, runId } = await start(
      [
        provider(
          "openrouter",
          { kind: "openai-compatible", base_url: router.url, api_key_env: "OR_KEY" },
          { OR_KEY: "sk-or-provider" },
        ),
      ],
      { "gpt-5": { provider: "openrouter", model: "openai/gpt-5" } },
    );
    const gpt = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    await gpt.chat.completions.create({
      model: "gpt-5",
      messages: [{ role: "user", content: "hi" }],
    });

    expect(router.requests[0]?.body.model).toBe("openai/gpt-5");
    expect(router.requests[0]?.path).toBe("/api/v1/chat/completions");
    await gateway.closeRun(runId);
    const [row] = await ledger.metering.listModelRequests(runId);
    expect(row).toMatchObject({ input_tokens: 321, output_tokens: 7, status: 200 });
    // Priced by the name the price table knows: the agent's "gpt-5".
    expect(row?.cost_usd).toBeCloseTo((321 * 1.25 + 7 * 10) / 1_000_000, 12);
  });

  it("Azure-style: the key in an api-key header and the api-version on every request", async () => {
    const azure = await track(
      startFakeOpenAICompatible({ script: hello, pathPrefix: "/openai/deployments/gpt-5" }),
    );
    const { access } = await start([
      provider(
        "azure",
        {
          kind: "openai-compatible",
          base_url: azure.url,
          api_key_env: "AZURE_OPENAI_API_KEY",
          auth: "api-key",
          query: { "api-version": "2024-10-21" },
        },
        { AZURE_OPENAI_API_KEY: "azure-key" },
      ),
    ]);
    const gpt = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    await gpt.chat.completions.create({
      model: "gpt-5",
      messages: [{ role: "user", content: "hi" }],
    });
    const [request] = azure.requests;
    expect(request?.url).toBe("/openai/deployments/gpt-5/chat/completions?api-version=2024-10-21");
    expect(request?.headers["api-key"]).toBe("azure-key");
    expect(request?.headers.authorization).toBeUndefined();
  });
});

describe("translation where the provider lacks the agent's protocol", () => {
  it("an Anthropic Messages stream served by a Chat-only server, metered as the server counted", async () => {
    const { server, claude, runId } = await startChatOnly(
      () => ({
        text: "translated reply",
        toolCalls: [{ name: "Read", arguments: { file_path: "/w/README.md" } }],
        usage: { input: 200, output: 40 },
      }),
      "qwen3-coder",
    );
    const stream = claude.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 1000,
      system: "You are a coding agent.",
      tools: [
        {
          name: "Read",
          description: "read a file",
          input_schema: { type: "object", properties: { file_path: { type: "string" } } },
        },
      ],
      messages: [{ role: "user", content: "read the readme" }],
    });
    const message = await stream.finalMessage();
    expect(message.model).toBe("claude-sonnet-4-5");
    expect(message.content).toEqual(
      [
        { type: "text", text: "translated reply", citations: null },
        expect.objectContaining({
          type: "tool_use",
          name: "Read",
          input: { file_path: "/w/README.md" },
        }),
      ].map((block) =>
        block.type === "text"
          ? expect.objectContaining({ type: "text", text: "translated reply" })
          : block,
      ),
    );
    expect(message.stop_reason).toBe("tool_use");
    expect(message.usage.output_tokens).toBe(40);

    const sent = server.requests[0]?.body;
    expect(sent.model).toBe("qwen3-coder");
    expect(sent.messages[0]).toEqual({ role: "system", content: "You are a coding agent." });
    expect(sent.tools[0].function.name).toBe("Read");
    expect(sent.stream_options).toEqual({ include_usage: true });

    await gateway.closeRun(runId);
    const rows = await ledger.metering.listModelRequests(runId);
    expect(rows.map((r) => [r.protocol, r.status, r.input_tokens, r.output_tokens])).toEqual([
      ["anthropic-messages", 200, 200, 40],
    ]);
    expect(server.reported).toMatchObject({ inputTokens: 200, outputTokens: 40, requests: 1 });
  });

  it("a provider error reaches the agent in its own protocol with the provider's words", async () => {
    const { claude, runId } = await startChatOnly(
      () => ({ fail: { status: 404, message: "The model `qwen9` does not exist" } }),
      "qwen9",
    );
    await expect(
      claude.messages.create({
        model: "claude-sonnet-4-5",
        max_tokens: 10,
        messages: [{ role: "user", content: "hi" }],
      }),
    ).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining("The model `qwen9` does not exist"),
    });
    const { failure } = await gateway.closeRun(runId);
    expect(failure).toEqual({
      status: 404,
      from: "provider",
      message: "404: The model `qwen9` does not exist",
      blocking: true,
    });
  });
});

describe("requests the gateway refuses before any provider sees them", () => {
  it("a request the translation cannot carry: 400 naming it, not blocking the run", async () => {
    const { server, claude, runId } = await startChatOnly(hello, "qwen3-coder");
    await expect(
      claude.messages.create({
        model: "claude-sonnet-4-5",
        max_tokens: 10,
        messages: [
          {
            role: "user",
            content: [
              {
                type: "image",
                source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" },
              },
            ],
          },
        ],
      }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining("image") });
    expect(server.requests).toEqual([]);
    expect((await gateway.closeRun(runId)).failure).toMatchObject({
      status: 400,
      from: "gateway",
      blocking: false,
    });
  });

  it("a model no provider serves: 404 with the configured providers, recorded, blocking", async () => {
    const anthropic = await track(
      startFakeAnthropic({ apiKey: KEYS.ANTHROPIC_API_KEY, script: hello }),
    );
    const { access, runId } = await start([provider("anthropic", { base_url: anthropic.url })]);
    const gpt = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    await expect(
      gpt.chat.completions.create({ model: "gpt-5", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining(
        'no configured provider serves model "gpt-5"; configured: anthropic (claude-*)',
      ),
    });
    expect(anthropic.requests).toEqual([]);
    const { failure } = await gateway.closeRun(runId);
    expect(failure).toMatchObject({ status: 404, from: "gateway", blocking: true });
    const rows = await ledger.metering.listModelRequests(runId);
    expect(rows.map((r) => [r.status, r.input_tokens])).toEqual([[404, 0]]);
    expect(rows[0]?.error).toContain("no configured provider");
  });

  it("a model without a price: refused before it is forwarded, with the fix", async () => {
    const openai = await track(startFakeOpenAI({ apiKey: KEYS.OPENAI_API_KEY, script: hello }));
    const { access } = await start([provider("openai", { base_url: openai.url })]);
    const gpt = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    await expect(
      gpt.chat.completions.create({
        model: "gpt-unpriced",
        messages: [{ role: "user", content: "hi" }],
      }),
    ).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("[gateway] prices_file"),
    });
    expect(openai.requests).toEqual([]);
  });

  it("a success after a failure clears the run's failure", async () => {
    let calls = 0;
    const openai = await track(
      startFakeOpenAI({
        apiKey: KEYS.OPENAI_API_KEY,
        script: () => (calls++ === 0 ? { fail: { status: 500 } } : { text: "ok" }),
      }),
    );
    const { access, runId } = await start([provider("openai", { base_url: openai.url })]);
    const gpt = new OpenAI({ baseURL: access.baseURL, apiKey: access.apiKey, maxRetries: 0 });
    await expect(
      gpt.chat.completions.create({ model: "gpt-5", messages: [{ role: "user", content: "a" }] }),
    ).rejects.toMatchObject({ status: 500 });
    await gpt.chat.completions.create({
      model: "gpt-5",
      messages: [{ role: "user", content: "b" }],
    });
    expect((await gateway.closeRun(runId)).failure).toBeUndefined();
  });
});
