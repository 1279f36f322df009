import type { RunSandbox } from "../sandbox/index.ts";
import type { AgentEventSink, AgentStopReason } from "./events.ts";

/** Where the agent sends model requests, and the key it may use there. */
export interface ModelEndpoint {
  /** OpenAI-compatible base URL, e.g. http://127.0.0.1:4000/v1 */
  baseURL: string;
  apiKey: string;
}

export interface AgentTask {
  /** The instructions: the work order, its acceptance, feedback from earlier attempts. */
  prompt: string;
  workspacePath: string;
  model: string;
  endpoint: ModelEndpoint;
  maxSteps: number;
  /** Tokens (input + output) the run may spend before it is stopped. */
  maxTokens: number;
  commandTimeoutMs: number;
  /**
   * The run's sandbox: every process the agent starts (a CLI agent itself, every command) runs
   * through it. Its blocked attempts reach the line directly, not through the driver.
   */
  sandbox?: RunSandbox;
}

export interface AgentResult {
  reason: AgentStopReason;
  /** The agent's last words, or the error that stopped it. */
  summary: string;
  inputTokens: number;
  outputTokens: number;
}

/**
 * Starts one coding agent on one task and turns whatever it does into the common event stream.
 * A driver must not throw for agent failures (crash, garbage output, model errors): it ends with
 * reason "error" and a summary a person can act on.
 */
export interface AgentDriver {
  readonly name: string;
  run(task: AgentTask, emit: AgentEventSink, signal: AbortSignal): Promise<AgentResult>;
  /**
   * Checks, before the line takes any work, that the agent can run here at all (a CLI driver: the
   * program is installed and starts). Throws a NightshiftError with the fix.
   */
  preflight?(): Promise<unknown>;
}
