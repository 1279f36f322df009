export { BuiltinAgent } from "./builtin.ts";
export {
  type ClaudeCodeOptions,
  ClaudeCodeParser,
  claudeCodeDriver,
  claudeCodeSpec,
} from "./claude-code.ts";
export {
  type CliAdapter,
  CliAgentDriver,
  type CliDriverOptions,
  type CliOutputParser,
  type CliVerdict,
  endpointInside,
} from "./cli/cli-driver.ts";
export {
  type AgentCliSpec,
  installHint,
  type LocatedCli,
  type LocateOptions,
  locateCli,
} from "./cli/detect.ts";
export {
  type AgentCommand,
  type AgentSpawner,
  installRoot,
  localSpawner,
  type SpawnControl,
  type SpawnEnding,
  sandboxSpawner,
} from "./cli/spawn.ts";
export { type CodexOptions, CodexParser, codexDriver, codexSpec } from "./codex.ts";
export type { AgentDriver, AgentResult, AgentTask, ModelEndpoint } from "./driver.ts";
export type { AgentEvent, AgentEventSink, AgentStopReason } from "./events.ts";
export {
  GeminiCliDriver,
  type GeminiCliOptions,
  GeminiCliParser,
  geminiCliDriver,
  geminiCliSpec,
} from "./gemini-cli.ts";
export { type OpenCodeOptions, OpenCodeParser, openCodeDriver, openCodeSpec } from "./opencode.ts";
export { buildPrompt, FEEDBACK_HEADING, type OrderBrief } from "./prompt.ts";
export { createDriver, DRIVER_NAMES, type DriverName, type DriverSettings } from "./registry.ts";
export { ToolError, WorkspaceTools } from "./workspace-tools.ts";
