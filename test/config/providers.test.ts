import { describe, expect, it } from "vitest";
import {
  ConfigError,
  configTemplate,
  parseConfig,
  resolveProviders,
} from "../../src/config/index.ts";

function configError(text: string): ConfigError {
  try {
    parseConfig(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("[providers] in nightshift.toml", () => {
  it("an empty table named after a kind is a whole provider with that vendor's defaults", () => {
    const config = parseConfig("[providers.anthropic]\n[providers.openai]\n[providers.google]\n");
    expect(resolveProviders(config)).toMatchObject([
      {
        name: "anthropic",
        kind: "anthropic",
        baseURL: "https://api.anthropic.com",
        apiKeyEnv: "ANTHROPIC_API_KEY",
        models: ["claude-*"],
        protocols: ["anthropic-messages"],
        auth: "x-api-key",
      },
      {
        name: "openai",
        baseURL: "https://api.openai.com/v1",
        apiKeyEnv: "OPENAI_API_KEY",
        protocols: ["openai-chat", "openai-responses"],
        auth: "bearer",
      },
      {
        name: "google",
        baseURL: "https://generativelanguage.googleapis.com",
        apiKeyEnv: "GEMINI_API_KEY",
        protocols: ["gemini"],
        auth: "x-goog-api-key",
      },
    ]);
    // The agent's model defaults to the first provider's usual one.
    expect(config.agent.model).toBe("claude-sonnet-5-5");
  });

  it("a provider under its own name needs a kind, and says which kinds exist", () => {
    const error = configError(
      '[providers.openrouter]\nbase_url = "https://openrouter.ai/api/v1"\n',
    );
    expect(error.message).toContain("[providers.openrouter] kind");
    expect(error.message).toContain('"openai-compatible"');
  });

  it("an openai-compatible provider without its URL is refused with an example", () => {
    const error = configError('[providers.local]\nkind = "openai-compatible"\n');
    expect(error.message).toContain("[providers.local] base_url");
    expect(error.message).toContain("http://127.0.0.1:11434/v1");
  });

  it("an openai-compatible provider without a key variable sends no key", () => {
    const config = parseConfig(
      '[agent]\nmodel = "qwen3-coder"\n[providers.ollama]\nkind = "openai-compatible"\nbase_url = "http://127.0.0.1:11434/v1"\n',
    );
    expect(resolveProviders(config)[0]).toMatchObject({ auth: "none", apiKeyEnv: undefined });
  });

  it("Azure-style settings: api-key header, query parameters, both protocols", () => {
    const config = parseConfig(`
[agent]
model = "gpt-4o"
[providers.azure]
kind = "openai-compatible"
base_url = "https://example.openai.azure.com/openai/deployments/gpt-4o"
api_key_env = "AZURE_OPENAI_API_KEY"
auth = "api-key"
query = { "api-version" = "2024-10-21" }
protocols = ["openai-chat", "openai-responses"]
`);
    expect(resolveProviders(config)[0]).toMatchObject({
      auth: "api-key",
      query: { "api-version": "2024-10-21" },
      protocols: ["openai-chat", "openai-responses"],
    });
  });

  it("protocols and auth only apply to openai-compatible providers", () => {
    const error = configError('[providers.anthropic]\nauth = "none"\n');
    expect(error.message).toContain('applies only to kind "openai-compatible", not "anthropic"');
  });

  it("a [models] entry must name a configured provider", () => {
    const error = configError(
      '[providers.anthropic]\n[models]\n"claude-sonnet-4-5" = { provider = "openrouter" }\n',
    );
    expect(error.message).toContain('names no configured provider "openrouter"');
    expect(error.message).toContain("configured: anthropic");
  });

  it("the old [model] section and [providers] together are refused with the way out", () => {
    const error = configError('[model]\nprovider = "simulator"\n[providers.anthropic]\n');
    expect(error.message).toContain("move it into [providers.<name>]");
  });

  it("a misspelt provider key is an error naming the known keys", () => {
    const error = configError('[providers.anthropic]\napi_key = "sk-..."\n');
    expect(error.message).toContain('[providers.anthropic]: unknown key "api_key"');
    expect(error.message).toContain("api_key_env, auth, base_url, kind");
  });
});

describe("the file `nightshift init` writes", () => {
  const base = { name: "shop", branch: "main", test: "npm test" };

  it("configures the providers whose keys were found, and the first one's model", () => {
    const config = parseConfig(
      configTemplate({ ...base, providers: { kinds: ["openai", "anthropic"] } }),
    );
    expect(resolveProviders(config).map((p) => p.name)).toEqual(["openai", "anthropic"]);
    expect(config.agent.model).toBe("gpt-5.5");
  });

  it("with no provider found it configures none (run then refuses) rather than the simulator", () => {
    const text = configTemplate({ ...base, providers: { kinds: [] } });
    const config = parseConfig(text);
    expect(resolveProviders(config)).toEqual([]);
    expect(text).toContain("refuses to start until one is");
  });

  it("the simulator only when asked for, labelled, as the stand-in", () => {
    const text = configTemplate({ ...base, providers: { simulator: "stand-in" } });
    const config = parseConfig(text);
    expect(resolveProviders(config)).toMatchObject([{ kind: "simulator" }]);
    expect(config.simulator.policy).toBe("stand-in");
    expect(config.agent.model).toBe("sim-demo");
    expect(text).toContain("SIMULATED");
  });

  it("an openai-compatible server gets its URL and a model to fill in", () => {
    const text = configTemplate({
      ...base,
      providers: { kinds: ["openai-compatible"], baseURL: "http://127.0.0.1:8000/v1" },
    });
    expect(text).toContain('base_url = "http://127.0.0.1:8000/v1"');
    expect(parseConfig(text).agent.model).toBe("CHANGE-ME");
  });
});
