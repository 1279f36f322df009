export { CONFIG_FILE, ConfigError, type LoadedConfig, loadConfig, parseConfig } from "./load.ts";
export { configSchema, type FactoryConfig } from "./schema.ts";
export { configTemplate } from "./template.ts";
