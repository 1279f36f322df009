// A bench like startAgentBench (test/support/agents.ts), but with a fake of a real model provider
// (test/support/fake-providers.ts) behind the gateway instead of the simulator, routed by model the
// way nightshift.toml's [providers] and [models] sections route it.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { type ProviderKind, providerSettings } from "../../src/config/providers.ts";
import {
  type ConfiguredProvider,
  Gateway,
  modelRouter,
  type PriceTable,
  parsePriceTable,
  type Upstream,
} from "../../src/gateway/index.ts";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { type GatewayBench, OutsideTrap } from "./agents.ts";
import type { FakeProvider } from "./fake-providers.ts";

/** The key the fake provider accepts, and (unless told otherwise) the one the gateway holds. */
export const PROVIDER_KEY = "sk-provider-0123456789abcdef";

/**
 * Prices of this bench's own, independent of the bundled prices.json (which changes): every model
 * the CLIs may ask for, including the ones they use for side requests. USD per million tokens.
 */
export const benchPrices: PriceTable = parsePriceTable(
  JSON.stringify({
    as_of: "2026-01-01",
    models: {
      "claude-sonnet-4-5": { input: 3, output: 15, cached_input: 0.3 },
      "claude-haiku-4-5": { input: 1, output: 5, cached_input: 0.1 },
      "gpt-5": { input: 1.25, output: 10, cached_input: 0.125 },
      "gemini-2.5-pro": { input: 1.25, output: 10, cached_input: 0.31 },
      "gemini-2.5-flash": { input: 0.3, output: 2.5, cached_input: 0.075 },
      "gemini-2.5-flash-lite": { input: 0.1, output: 0.4 },
    },
  }),
  "provider-bench prices",
);

export interface ProviderBench extends GatewayBench {
  ledger: Ledger;
  gateway: Gateway;
  fake: FakeProvider;
  provider: ConfiguredProvider;
  trap: OutsideTrap;
  /** Env for drivers: the trap as proxy. */
  env: Record<string, string>;
  scratch: string;
  close(): Promise<void>;
}

export interface ProviderBenchOptions {
  /** The provider's kind, as in `[providers.<name>] kind = ...`. */
  kind: Exclude<ProviderKind, "simulator">;
  /** Starts the fake; it must accept PROVIDER_KEY. */
  startFake: () => Promise<FakeProvider>;
  /** `[models]` entries: a model the agent asks for, routed to this provider under another name. */
  models?: Record<string, { model?: string }>;
  /** The key the gateway sends (default PROVIDER_KEY); another one models a wrong key. */
  gatewayKey?: string;
}

const PROVIDER_NAME = "upstream";

/**
 * The base URL as nightshift normalises a configured one (src/cli/models.ts): Anthropic's and
 * Google's SDKs take the host; OpenAI-style ones take …/v1 (or /api/v1), already versioned.
 */
function upstreamOf(kind: ProviderKind, url: string, apiKey: string): Omit<Upstream, "auth"> {
  const base = url.replace(/\/+$/, "");
  const openAIStyle = kind === "openai" || kind === "openai-compatible";
  return {
    name: PROVIDER_NAME,
    baseURL: openAIStyle ? base : base.replace(/\/(v1|v1beta)$/, ""),
    apiKey,
    query: {},
    versionedBase: openAIStyle,
  };
}

/** Ledger + one fake provider + a gateway routing to it by model + the outside trap. */
export async function startProviderBench(options: ProviderBenchOptions): Promise<ProviderBench> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), "nightshift-providers-"));
  const ledger = await openLedger({ kind: "memory" });
  const fake = await options.startFake();
  const settings = providerSettings(PROVIDER_NAME, {
    kind: options.kind,
    base_url: fake.url,
    // An openai-compatible provider without a key variable is taken for a keyless local server.
    api_key_env: "FAKE_PROVIDER_KEY",
  });
  const provider: ConfiguredProvider = {
    ...settings,
    upstream: {
      ...upstreamOf(options.kind, fake.url, options.gatewayKey ?? PROVIDER_KEY),
      auth: settings.auth,
    },
  };
  const models = Object.fromEntries(
    Object.entries(options.models ?? {}).map(([name, route]) => [
      name,
      { provider: PROVIDER_NAME, model: route.model },
    ]),
  );
  const gateway = new Gateway({
    ledger,
    logger: pino({ level: "silent" }),
    prices: benchPrices,
    limits: {},
    router: modelRouter([provider], models),
    retry: { attempts: 1 },
  });
  await gateway.listen();
  const trap = new OutsideTrap();
  const trapUrl = await trap.start();
  return {
    ledger,
    gateway,
    fake,
    provider,
    trap,
    env: trap.env(trapUrl),
    scratch,
    async close() {
      await gateway.close();
      await fake.close();
      await trap.close();
      await ledger.close();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}
