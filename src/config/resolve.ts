import type { ProviderSettings } from "./providers.ts";
import { providerSettings } from "./providers.ts";
import type { FactoryConfig } from "./schema.ts";

/** Every configured provider with its defaults filled in, in the order the file lists them. */
export function resolveProviders(config: FactoryConfig): ProviderSettings[] {
  if (config.model) {
    const legacy = config.model;
    return legacy.provider === "simulator"
      ? [providerSettings("simulator", {})]
      : [
          providerSettings("openai-compatible", {
            ...(legacy.base_url ? { base_url: legacy.base_url } : {}),
            api_key_env: legacy.api_key_env,
          }),
        ];
  }
  return Object.entries(config.providers).map(([name, section]) => providerSettings(name, section));
}

/** Whether any configured provider is the simulator (then every run must say so, loudly). */
export function usesSimulator(config: FactoryConfig): boolean {
  return resolveProviders(config).some((provider) => provider.kind === "simulator");
}
