import { NightshiftError } from "../errors/index.ts";
import { BuiltinAgent } from "./builtin.ts";
import { type ClaudeCodeOptions, claudeCodeDriver } from "./claude-code.ts";
import type { CliDriverOptions } from "./cli/cli-driver.ts";
import { type CodexOptions, codexDriver } from "./codex.ts";
import type { AgentDriver } from "./driver.ts";
import { DRIVER_NAMES, type DriverName } from "./driver-names.ts";
import { type GeminiCliOptions, geminiCliDriver } from "./gemini-cli.ts";
import { openCodeDriver } from "./opencode.ts";

export { DRIVER_NAMES, type DriverName };

/** What the configuration says about the agent, for whichever driver is chosen. */
export interface DriverSettings {
  /** Applies to every CLI driver. */
  common?: Omit<CliDriverOptions, "path">;
  claudeCode?: Pick<ClaudeCodeOptions, "path" | "permissionMode" | "disallowedTools">;
  codex?: Pick<CodexOptions, "path" | "sandbox">;
  opencode?: Pick<CliDriverOptions, "path">;
  geminiCli?: Pick<GeminiCliOptions, "path" | "approvalMode" | "excludeTools">;
}

/** The driver for a configured agent name. */
export function createDriver(name: string, settings: DriverSettings = {}): AgentDriver {
  const common = settings.common ?? {};
  switch (name) {
    case "builtin":
      return new BuiltinAgent();
    case "claude-code":
      return claudeCodeDriver({ ...common, ...settings.claudeCode });
    case "codex":
      return codexDriver({ ...common, ...settings.codex });
    case "opencode":
      return openCodeDriver({ ...common, ...settings.opencode });
    case "gemini-cli":
      return geminiCliDriver({ ...common, ...settings.geminiCli });
    default:
      throw new NightshiftError("agent_unknown", `unknown agent driver "${name}"`, {
        hint: `set [agent] driver to one of ${DRIVER_NAMES.map((n) => `"${n}"`).join(", ")} in nightshift.toml`,
      });
  }
}
