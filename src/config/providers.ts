import { z } from "zod";

/**
 * The model services a factory can route to. Each kind has the defaults its vendor documents, so
 * `[providers.anthropic]` with nothing in it is a complete provider once ANTHROPIC_API_KEY is set.
 */
export const PROVIDER_KINDS = [
  "anthropic",
  "openai",
  "google",
  "openai-compatible",
  "simulator",
] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** Wire protocols by the names the gateway uses. */
export type ProtocolName = "openai-chat" | "anthropic-messages" | "openai-responses" | "gemini";

/** How the provider wants its key sent. */
export type ProviderAuth = "x-api-key" | "x-goog-api-key" | "bearer" | "api-key" | "none";

interface KindDefaults {
  /** The base URL as the vendor's own SDK takes it. */
  baseURL?: string;
  apiKeyEnv?: string;
  /** Model-name globs routed to this provider when it is configured. */
  models: string[];
  /** Protocols it serves natively; the first is the one others are translated into. */
  protocols: ProtocolName[];
  auth: ProviderAuth;
  /** The model `[agent] model` defaults to when this is the first provider. */
  defaultModel?: string;
  /** The Chat Completions field that carries the output limit. */
  chatMaxTokensField: "max_tokens" | "max_completion_tokens";
}

export const KIND_DEFAULTS: Record<ProviderKind, KindDefaults> = {
  anthropic: {
    baseURL: "https://api.anthropic.com",
    apiKeyEnv: "ANTHROPIC_API_KEY",
    models: ["claude-*"],
    protocols: ["anthropic-messages"],
    auth: "x-api-key",
    defaultModel: "claude-sonnet-5-5",
    chatMaxTokensField: "max_tokens",
  },
  openai: {
    baseURL: "https://api.openai.com/v1",
    apiKeyEnv: "OPENAI_API_KEY",
    models: ["gpt-*", "o1*", "o3*", "o4*", "codex-*", "chatgpt-*"],
    protocols: ["openai-chat", "openai-responses"],
    auth: "bearer",
    defaultModel: "gpt-5.5",
    chatMaxTokensField: "max_completion_tokens",
  },
  google: {
    baseURL: "https://generativelanguage.googleapis.com",
    apiKeyEnv: "GEMINI_API_KEY",
    models: ["gemini-*"],
    protocols: ["gemini"],
    auth: "x-goog-api-key",
    defaultModel: "gemini-3.1-pro-preview",
    chatMaxTokensField: "max_tokens",
  },
  "openai-compatible": {
    models: ["*"],
    protocols: ["openai-chat"],
    auth: "bearer",
    chatMaxTokensField: "max_tokens",
  },
  simulator: {
    models: ["sim-*"],
    protocols: ["openai-chat", "anthropic-messages", "openai-responses", "gemini"],
    auth: "bearer",
    defaultModel: "sim-demo",
    chatMaxTokensField: "max_tokens",
  },
};

export const envVarName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, "must be an environment variable name such as OPENAI_API_KEY");

export const providerSection = z
  .object({
    /** Defaults to the table's name when that name is a kind: [providers.anthropic]. */
    kind: z.enum(PROVIDER_KINDS).optional(),
    /** As the vendor's SDK takes it: https://api.openai.com/v1, https://api.anthropic.com, ... */
    base_url: z.url().optional(),
    /** The environment variable holding the key; the gateway alone reads it. */
    api_key_env: envVarName.optional(),
    /** Globs of model names routed here ("claude-*", "*"); `[models]` entries come first. */
    models: z.array(z.string().min(1)).min(1).optional(),
    /** openai-compatible: which OpenAI protocols the server speaks. */
    protocols: z
      .array(z.enum(["openai-chat", "openai-responses"]))
      .min(1)
      .optional(),
    /** openai-compatible: "bearer" (default), "api-key" (Azure's header) or "none" (a local server). */
    auth: z.enum(["bearer", "api-key", "none"]).optional(),
    /** Query parameters added to every request, e.g. { "api-version" = "2024-10-21" } for Azure. */
    query: z.record(z.string(), z.string()).optional(),
  })
  .strict();

export const modelRouteSection = z
  .object({
    provider: z.string().min(1),
    /** The provider's own name for the model, when it differs ("anthropic/claude-sonnet-4.5"). */
    model: z.string().min(1).optional(),
  })
  .strict();

/** The pre-providers `[model]` section, still read so that older nightshift.toml files work. */
export const legacyModelSection = z
  .object({
    provider: z.enum(["simulator", "openai-compatible"]).default("simulator"),
    base_url: z.url().optional(),
    api_key_env: envVarName.default("OPENAI_API_KEY"),
  })
  .strict();

export type ProviderSection = z.infer<typeof providerSection>;
export type ModelRoute = z.infer<typeof modelRouteSection>;

/** A provider with every default filled in: what the gateway and the pre-flight check use. */
export interface ProviderSettings {
  name: string;
  kind: ProviderKind;
  baseURL: string | undefined;
  apiKeyEnv: string | undefined;
  models: string[];
  protocols: ProtocolName[];
  auth: ProviderAuth;
  query: Record<string, string>;
  chatMaxTokensField: "max_tokens" | "max_completion_tokens";
}

export function kindOf(name: string, section: ProviderSection): ProviderKind | undefined {
  return section.kind ?? PROVIDER_KINDS.find((kind) => kind === name);
}

export function providerSettings(name: string, section: ProviderSection): ProviderSettings {
  const kind = kindOf(name, section);
  if (!kind) throw new Error(`provider "${name}" has no kind`);
  const defaults = KIND_DEFAULTS[kind];
  return {
    name,
    kind,
    baseURL: section.base_url ?? defaults.baseURL,
    apiKeyEnv: section.api_key_env ?? defaults.apiKeyEnv,
    models: section.models ?? defaults.models,
    protocols: section.protocols ?? defaults.protocols,
    auth:
      section.auth ??
      (section.api_key_env || kind !== "openai-compatible" ? defaults.auth : "none"),
    query: section.query ?? {},
    chatMaxTokensField: defaults.chatMaxTokensField,
  };
}

/** Whether a model name matches a glob of `*` (any run of characters) and `?` (one character). */
export function matchesGlob(model: string, glob: string): boolean {
  const pattern = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${pattern}$`).test(model);
}

/** The protocol each agent driver speaks to its model. */
export const DRIVER_PROTOCOLS: Record<string, ProtocolName> = {
  builtin: "openai-chat",
  "claude-code": "anthropic-messages",
  codex: "openai-responses",
  opencode: "openai-chat",
  "gemini-cli": "gemini",
};
