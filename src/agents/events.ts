/**
 * The common event stream every agent driver produces, whatever agent runs underneath. The line
 * records these on the run; the console shows them. Agents never write the ledger themselves.
 */
export type AgentEvent =
  | { kind: "message"; text: string }
  | { kind: "tool_call"; callId: string; tool: string; input: unknown }
  | { kind: "tool_result"; callId: string; tool: string; output: string; isError: boolean }
  | { kind: "usage"; inputTokens: number; outputTokens: number }
  | { kind: "file_change"; path: string; change: "created" | "modified" | "deleted" }
  | { kind: "error"; message: string }
  /** A blocked attempt to cross the sandbox's walls (see sandbox/SandboxViolation). */
  | { kind: "sandbox_violation"; violation: string; detail: string; command?: string }
  /** The run is not isolated (sandbox backend "none"). */
  | { kind: "sandbox_warning"; message: string }
  /** Which sandbox limits the kernel enforces from outside on this host, and what it does not. */
  | { kind: "sandbox_limits"; enforced: string[]; missing: string }
  | { kind: "done"; reason: AgentStopReason; summary: string };

export type AgentStopReason =
  /** The agent said it was finished. */
  | "completed"
  /** It used the most model round-trips allowed. */
  | "max_steps"
  /** It used its token budget. */
  | "budget"
  /** The run was cancelled (timeout, shutdown). */
  | "aborted"
  /** The model or the agent failed. */
  | "error";

export type AgentEventSink = (event: AgentEvent) => void;
