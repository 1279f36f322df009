export { BuiltinAgent } from "./builtin.ts";
export type { AgentDriver, AgentResult, AgentTask, ModelEndpoint } from "./driver.ts";
export type { AgentEvent, AgentEventSink, AgentStopReason } from "./events.ts";
export { buildPrompt, FEEDBACK_HEADING, type OrderBrief } from "./prompt.ts";
export { ToolError, WorkspaceTools } from "./workspace-tools.ts";

import { NightshiftError } from "../errors/index.ts";
import { BuiltinAgent } from "./builtin.ts";
import type { AgentDriver } from "./driver.ts";

/** The driver for a configured agent name. */
export function createDriver(name: string): AgentDriver {
  switch (name) {
    case "builtin":
      return new BuiltinAgent();
    default:
      throw new NightshiftError("agent_unknown", `unknown agent driver "${name}"`, {
        hint: 'set [agent] driver = "builtin" in nightshift.toml',
      });
  }
}
