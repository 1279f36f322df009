import {
  matchesGlob,
  type ProtocolName,
  type ProviderAuth,
  type ProviderSettings,
} from "../config/index.ts";
import { canTranslate, type HeaderReader } from "../protocols/index.ts";

/** Where one provider's requests go, and the key the gateway adds (the run never sees it). */
export interface Upstream {
  /** The provider's name in nightshift.toml, for the ledger and for error messages. */
  name?: string;
  /**
   * Base URL. For OpenAI-style providers it is what the OpenAI SDK takes (…/v1) and the
   * protocol's "/v1" is not repeated; for the others the protocol path is appended as is.
   */
  baseURL: string;
  apiKey: string;
  auth: ProviderAuth;
  /** Query parameters every request carries (Azure's api-version). */
  query?: Record<string, string>;
  /** The base URL already ends with the API version that OpenAI-protocol paths start with. */
  versionedBase?: boolean;
}

/** The URL of one request: the upstream's base, the protocol path, the provider's query. */
export function upstreamURL(upstream: Upstream, protocol: ProtocolName, pathAndQuery: string): URL {
  const base = upstream.baseURL.replace(/\/+$/, "");
  const openAIStyle = protocol === "openai-chat" || protocol === "openai-responses";
  const tail =
    openAIStyle && upstream.versionedBase ? pathAndQuery.replace(/^\/v1(?=\/)/, "") : pathAndQuery;
  const url = new URL(`${base}${tail}`);
  for (const [name, value] of Object.entries(upstream.query ?? {})) {
    url.searchParams.set(name, value);
  }
  return url;
}

/** Where the gateway sends one request. */
export interface Route {
  upstream: Upstream;
  /** The protocol the upstream is spoken to in: the client's own, or the one it is translated into. */
  protocol: ProtocolName;
  /** The model name the provider knows. */
  model: string;
  chatMaxTokensField: "max_tokens" | "max_completion_tokens";
}

export interface RouteRefusal {
  refused: true;
  status: 404 | 400;
  code: "no_upstream" | "no_translation";
  message: string;
}

export type RouteDecision = Route | RouteRefusal;

export function isRouteRefusal(decision: RouteDecision): decision is RouteRefusal {
  return "refused" in decision;
}

/** Picks the provider for a request by its protocol and model; the gateway knows no more. */
export interface Router {
  route(protocol: ProtocolName, model: string): RouteDecision;
}

/**
 * Routes by protocol alone: every model of a protocol goes to one upstream, spoken natively. Used
 * where one server plays every provider (the simulator in the demo and the tests).
 */
export function protocolRouter(upstreams: Partial<Record<ProtocolName, Upstream>>): Router {
  return {
    route(protocol, model) {
      const upstream = upstreams[protocol];
      if (!upstream) {
        return {
          refused: true,
          status: 404,
          code: "no_upstream",
          message: `this gateway has no provider configured for the ${protocol} protocol`,
        };
      }
      return { upstream, protocol, model, chatMaxTokensField: "max_tokens" };
    },
  };
}

export interface ConfiguredProvider extends ProviderSettings {
  upstream: Upstream;
}

/**
 * Routes by model: an explicit `[models]` entry first, else the first provider whose model globs
 * match. The provider's own protocol is used when it speaks the client's; otherwise the request is
 * translated into the provider's first protocol.
 */
export function modelRouter(
  providers: readonly ConfiguredProvider[],
  models: Record<string, { provider: string; model?: string | undefined }> = {},
): Router {
  const byName = new Map(providers.map((p) => [p.name, p]));
  // Decisions are remembered per protocol and model: matching globs on every request costs more
  // than the rest of routing. Model names come from clients, so the memory is bounded.
  const decided = new Map<string, RouteDecision>();
  const decide = (protocol: ProtocolName, model: string): RouteDecision => {
    const key = `${protocol} ${model}`;
    let decision = decided.get(key);
    if (decision === undefined) {
      decision = route(protocol, model);
      if (decided.size >= 1_000) decided.clear();
      decided.set(key, decision);
    }
    return decision;
  };
  return { route: decide };

  function route(protocol: ProtocolName, model: string): RouteDecision {
    const explicit = models[model];
    const provider = explicit
      ? byName.get(explicit.provider)
      : providers.find((p) => p.models.some((glob) => matchesGlob(model, glob)));
    if (!provider) return noProvider(providers, model);
    const upstreamModel = explicit?.model ?? model;
    const target = provider.protocols.includes(protocol)
      ? protocol
      : provider.protocols.find((p) => canTranslate(protocol, p));
    if (!target) {
      return {
        refused: true,
        status: 400,
        code: "no_translation",
        message: `provider "${provider.name}" speaks ${provider.protocols.join(", ")}, and nightshift cannot translate ${protocol} requests into it; route model "${model}" to a provider that speaks ${protocol}, or use an agent that speaks ${provider.protocols[0]}`,
      };
    }
    return {
      upstream: provider.upstream,
      protocol: target,
      model: upstreamModel,
      chatMaxTokensField: provider.chatMaxTokensField,
    };
  }
}

function noProvider(providers: readonly ConfiguredProvider[], model: string): RouteRefusal {
  const served = providers.map((p) => `${p.name} (${p.models.join(", ")})`).join("; ");
  return {
    refused: true,
    status: 404,
    code: "no_upstream",
    message: `no configured provider serves model "${model}"${served ? `; configured: ${served}` : ""}. Add a [models] entry routing it, or change the model`,
  };
}

/** The Messages API version the gateway asks for when a translated request brings none. */
export const ANTHROPIC_VERSION = "2023-06-01";

/**
 * The client's headers as the upstream needs them: Anthropic refuses a request without
 * anthropic-version, which only Anthropic's own clients send.
 */
export function upstreamHeaders(incoming: HeaderReader, protocol: ProtocolName): HeaderReader {
  if (protocol !== "anthropic-messages" || incoming.get("anthropic-version") !== null) {
    return incoming;
  }
  return {
    get: (name) =>
      name.toLowerCase() === "anthropic-version" ? ANTHROPIC_VERSION : incoming.get(name),
  };
}
