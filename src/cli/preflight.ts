import { randomUUID } from "node:crypto";
import path from "node:path";
import { createDriver } from "../agents/index.ts";
import {
  DRIVER_PROTOCOLS,
  type FactoryConfig,
  type ProtocolName,
  resolveProviders,
} from "../config/index.ts";
import { describeError, NightshiftError } from "../errors/index.ts";
import {
  type ConfiguredProvider,
  forward,
  isRouteRefusal,
  loadPrices,
  modelRouter,
  type PriceTable,
  providerMessage,
  type Route,
  readText,
  upstreamHeaders,
  upstreamURL,
} from "../gateway/index.ts";
import type { Metering } from "../ledger/index.ts";
import { safeJson, wireProtocolNamed } from "../protocols/index.ts";
import { driverSettings, type Factory } from "./factory.ts";
import { providerKey, type StartedProviders, startProviders } from "./models.ts";

/** One finding of the pre-flight check, as `doctor` prints it and `run` refuses on. */
export interface Check {
  /** What was checked, e.g. `key of provider "anthropic"`. */
  subject: string;
  ok: boolean;
  /** On success what was found; on failure the cause. */
  detail: string;
  /** On failure, the fix. */
  hint?: string;
}

/** One agent choice the line will make: the configured default, or an order's own. */
export interface AgentChoice {
  driver: string;
  model: string;
}

export interface PreflightInput {
  config: FactoryConfig;
  choices: AgentChoice[];
  prices: PriceTable;
  /** Proves a driver can start here (a CLI: installed, answers --version); throws NightshiftError. */
  checkDriver(name: string): Promise<string>;
  /** Starts the providers (the simulator, if configured) for the test requests. */
  startProviders(): Promise<StartedProviders>;
  /** Where the test requests are metered (no run: they belong to the factory). */
  ledger: Pick<Metering, "recordModelRequests">;
  env?: NodeJS.ProcessEnv;
}

/**
 * Everything that would make every run fail, checked before the line takes an order: a provider
 * for every driver/model pair, the keys, the prices, the agent CLIs, and one cheap request to
 * every provider in use. Nothing here claims an order, so a failure costs no attempt.
 */
export async function preflight(input: PreflightInput): Promise<Check[]> {
  const env = input.env ?? process.env;
  const settings = resolveProviders(input.config);
  if (settings.length === 0) {
    return [
      {
        subject: "model providers",
        ok: false,
        detail: "nightshift.toml configures no model provider",
        hint: "add one, e.g. [providers.anthropic] with ANTHROPIC_API_KEY exported (docs/models.md); [providers.simulator] runs a labelled stand-in that changes nothing",
      },
    ];
  }
  const checks: Check[] = settings.map((provider) => {
    const subject = `key of provider "${provider.name}"`;
    if (provider.kind === "simulator") {
      return { subject, ok: true, detail: "none needed: the SIMULATED model (bundled simulator)" };
    }
    try {
      const key = providerKey(provider, env);
      return {
        subject,
        ok: true,
        detail: key ? `${provider.apiKeyEnv} is set` : "none sent (auth = none)",
      };
    } catch (error) {
      return failed(subject, error);
    }
  });
  // Routing needs no keys or servers yet: those are checked above and pinged below.
  const unstarted = settings.map((p) => ({
    ...p,
    upstream: { name: p.name, baseURL: "", apiKey: "", auth: p.auth },
  }));
  const routes = routeChoices(input, modelRouter(unstarted, input.config.models), checks);
  for (const driver of new Set(input.choices.map((c) => c.driver))) {
    checks.push(
      await input
        .checkDriver(driver)
        .then((detail) => ({ subject: `agent "${driver}"`, ok: true, detail }))
        .catch((error: unknown) => failed(`agent "${driver}"`, error)),
    );
  }
  if (checks.every((check) => check.ok)) checks.push(...(await pingProviders(input, routes)));
  return checks;
}

interface RoutedChoice {
  choice: AgentChoice;
  protocol: ProtocolName;
  route: Route;
  /** The name its spend is priced by, as the gateway will price it. */
  pricedModel: string;
}

function routeChoices(
  input: PreflightInput,
  router: ReturnType<typeof modelRouter>,
  checks: Check[],
): RoutedChoice[] {
  const routed: RoutedChoice[] = [];
  for (const choice of uniqueChoices(input.choices)) {
    const subject = `${choice.driver} with model "${choice.model}"`;
    const protocol = DRIVER_PROTOCOLS[choice.driver];
    if (!protocol) {
      checks.push({ subject, ok: false, detail: `unknown agent driver "${choice.driver}"` });
      continue;
    }
    if (!choice.model) {
      checks.push({
        subject,
        ok: false,
        detail: "no model is set",
        hint: 'set [agent] model in nightshift.toml to a model your provider offers, e.g. model = "claude-sonnet-5-5"',
      });
      continue;
    }
    const route = router.route(protocol, choice.model);
    if (isRouteRefusal(route)) {
      checks.push({
        subject,
        ok: false,
        detail: route.message,
        hint: `${choice.driver} speaks ${protocol}: route "${choice.model}" to a provider (its models globs or a [models] entry), or pick a model a configured provider serves`,
      });
      continue;
    }
    const provider = route.upstream.name ?? "?";
    const pricedModel = input.prices.pricedName(route.model, choice.model);
    if (pricedModel === undefined) {
      checks.push({
        subject,
        ok: false,
        detail: `no price is known for model "${route.model}" (provider "${provider}"), so the gateway cannot meter it and would refuse every request`,
        hint: `add it to a price table and point [gateway] prices_file at it: {"as_of": "YYYY-MM-DD", "models": {"${route.model}": {"input": <USD per million input tokens>, "output": <USD per million output tokens>}}}`,
      });
      continue;
    }
    const how =
      route.protocol === protocol
        ? `${protocol}, native`
        : `${protocol} translated to ${route.protocol} (docs/translation.md)`;
    checks.push({
      subject,
      ok: true,
      detail: `provider "${provider}" as "${route.model}" (${how})`,
    });
    routed.push({ choice, protocol, route, pricedModel });
  }
  return routed;
}

function uniqueChoices(choices: AgentChoice[]): AgentChoice[] {
  const seen = new Map<string, AgentChoice>();
  for (const choice of choices) seen.set(`${choice.driver}\u0000${choice.model}`, choice);
  return [...seen.values()];
}

/** One tiny request per provider, protocol and model in use, metered like any other. */
async function pingProviders(input: PreflightInput, routes: RoutedChoice[]): Promise<Check[]> {
  let started: StartedProviders;
  try {
    started = await input.startProviders();
  } catch (error) {
    return [failed("model providers", error)];
  }
  try {
    const byName = new Map(started.providers.map((p) => [p.name, p]));
    const targets = new Map<string, { provider: ConfiguredProvider; routed: RoutedChoice }>();
    for (const routed of routes) {
      const { route } = routed;
      const provider = byName.get(route.upstream.name ?? "");
      if (provider)
        targets.set(`${provider.name}\u0000${route.protocol}\u0000${route.model}`, {
          provider,
          routed,
        });
    }
    return await Promise.all(
      [...targets.values()].map(({ provider, routed }) => ping(input, provider, routed)),
    );
  } finally {
    await started.close();
  }
}

async function ping(
  input: PreflightInput,
  provider: ConfiguredProvider,
  { route, pricedModel }: RoutedChoice,
): Promise<Check> {
  const subject = `test request to "${provider.name}" (${route.model})`;
  const request = pingRequest(route);
  const url = upstreamURL(provider.upstream, route.protocol, request.path);
  const started = performance.now();
  const wire = wireProtocolNamed(route.protocol);
  try {
    const reply = await forward(
      provider.upstream,
      url,
      upstreamHeaders(new Headers(), route.protocol),
      JSON.stringify(request.body),
      { attempts: 2, baseDelayMs: 500, maxDelayMs: 5_000, headersTimeoutMs: 60_000 },
      AbortSignal.timeout(120_000),
    );
    const text = await readText(reply.body);
    const usage = reply.status < 300 ? wire?.usageFromResponse(safeJson(text)) : undefined;
    await input.ledger.recordModelRequests([
      {
        request_id: randomUUID(),
        run_id: null,
        order_id: null,
        protocol: route.protocol,
        model: route.model,
        status: reply.status,
        stream: false,
        input_tokens: usage?.inputTokens ?? 0,
        output_tokens: usage?.outputTokens ?? 0,
        cached_input_tokens: usage?.cachedInputTokens ?? 0,
        cost_usd: usage ? (input.prices.costOf(pricedModel, usage) ?? 0) : 0,
        usage_estimated: false,
        latency_ms: Math.round(performance.now() - started),
        attempts: reply.attempts,
        error: reply.status < 300 ? null : text.slice(0, 500),
      },
    ]);
    if (reply.status < 300) {
      return {
        subject,
        ok: true,
        detail: `answered ${reply.status} in ${Math.round(performance.now() - started)} ms`,
      };
    }
    return {
      subject,
      ok: false,
      detail: `${url.origin} answered ${providerMessage(text, reply.status)}`,
      hint: pingHint(provider, route, reply.status, text),
    };
  } catch (error) {
    return {
      subject,
      ok: false,
      detail: (error as Error).message,
      hint: `check [providers.${provider.name}] base_url and this machine's network access to it`,
    };
  }
}

function pingHint(
  provider: ConfiguredProvider,
  route: Route,
  status: number,
  text: string,
): string {
  // Google answers a bad key with 400 INVALID_ARGUMENT "API key not valid".
  if (status === 401 || status === 403 || (status === 400 && /api key/i.test(text))) {
    return `the provider refused the key in ${provider.apiKeyEnv ?? "(none)"}: check that it is current and belongs to ${provider.kind}`;
  }
  if (status === 404) {
    return `the provider does not offer model "${route.model}" at ${provider.baseURL}: check the name ([agent] model, an order's model, or a [models] entry) and base_url`;
  }
  if (status === 429)
    return "the provider is rate limiting this key: wait, or raise the key's limits";
  return `the provider rejected a minimal request to "${route.model}"; its message above says why`;
}

/** The smallest request each protocol accepts: a one-word prompt, a one-token answer. */
function pingRequest(route: Route): { path: string; body: Record<string, unknown> } {
  const prompt = "Reply with the word ok.";
  switch (route.protocol) {
    case "anthropic-messages":
      return {
        path: "/v1/messages",
        body: { model: route.model, max_tokens: 1, messages: [{ role: "user", content: prompt }] },
      };
    case "openai-chat":
      return {
        path: "/v1/chat/completions",
        body: {
          model: route.model,
          messages: [{ role: "user", content: prompt }],
          // Reasoning models spend tokens before answering: too small a cap is an error for some.
          [route.chatMaxTokensField]: 16,
        },
      };
    case "openai-responses":
      return {
        path: "/v1/responses",
        body: { model: route.model, input: prompt, max_output_tokens: 16 },
      };
    case "gemini":
      return {
        path: `/v1beta/models/${route.model}:generateContent`,
        body: {
          contents: [{ role: "user", parts: [{ text: prompt }] }],
          generationConfig: { maxOutputTokens: 1 },
        },
      };
    default: {
      const unknown: never = route.protocol;
      throw new Error(`unknown protocol ${unknown}`);
    }
  }
}

function failed(subject: string, error: unknown): Check {
  if (error instanceof NightshiftError) {
    return {
      subject,
      ok: false,
      detail: error.message,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }
  return { subject, ok: false, detail: describeError(error) };
}

/** The error `run` stops with: every failed check with its cause and fix. */
export function preflightError(checks: Check[]): NightshiftError | undefined {
  const failures = checks.filter((check) => !check.ok);
  if (failures.length === 0) return undefined;
  const lines = failures.map(
    (check) =>
      `  - ${check.subject}: ${check.detail}${check.hint ? `\n    fix: ${check.hint}` : ""}`,
  );
  return new NightshiftError(
    "preflight_failed",
    `the line did not start (no order was claimed, no attempt used): ${failures.length} pre-flight check${failures.length === 1 ? "" : "s"} failed:\n${lines.join("\n")}`,
    {
      hint: "fix the above, then run `nightshift doctor` to check again",
      details: { failures },
    },
  );
}

/** `doctor`'s report: one line per check. */
export function formatChecks(checks: Check[]): string[] {
  return checks.map(
    (check) =>
      `${check.ok ? "ok  " : "FAIL"} ${check.subject}: ${check.detail}${check.hint ? `\n     fix: ${check.hint}` : ""}`,
  );
}

/** The pre-flight check of an opened factory, over the default agent and every queued order's. */
export async function checkFactory(factory: Factory): Promise<Check[]> {
  const { config } = factory;
  const defaults = { driver: config.agent.driver, model: config.agent.model };
  const reviewer = config.gates.reviewer;
  return preflight({
    config,
    choices: [
      defaults,
      ...(await factory.ledger.pendingAgentChoices(defaults)),
      // The reviewer gate asks its model through the gateway in Chat Completions, as the built-in agent does.
      ...(reviewer.enabled ? [{ driver: "builtin", model: reviewer.model || defaults.model }] : []),
    ],
    prices: await loadPrices(
      config.gateway.prices_file && path.resolve(factory.root, config.gateway.prices_file),
    ),
    async checkDriver(name) {
      const found = (await createDriver(name, driverSettings(factory)).preflight?.()) as
        | { file?: string; version?: string }
        | undefined;
      return found?.version ? `${found.version} at ${found.file}` : "built in";
    },
    startProviders: () => startProviders(factory),
    ledger: factory.ledger.metering,
  });
}
