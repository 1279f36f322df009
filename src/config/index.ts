export { CONFIG_FILE, ConfigError, type LoadedConfig, loadConfig, parseConfig } from "./load.ts";
export {
  COVERAGE_METRICS,
  FINDING_FORMATS,
  type FindingFormat,
  PERPETUAL_SOURCES,
  type PerpetualSource,
} from "./loop-sections.ts";
export {
  DRIVER_PROTOCOLS,
  KIND_DEFAULTS,
  matchesGlob,
  PROVIDER_KINDS,
  type ProtocolName,
  type ProviderAuth,
  type ProviderKind,
  type ProviderSettings,
  providerSettings,
} from "./providers.ts";
export { resolveProviders, usesSimulator } from "./resolve.ts";
export { configSchema, type FactoryConfig } from "./schema.ts";
export { configTemplate } from "./template.ts";
