import { describeError, NightshiftError } from "../errors/index.ts";
import { type AgentCliSpec, type LocatedCli, type LocateOptions, locateCli } from "./cli/detect.ts";
import type { AgentDriver, AgentResult, AgentTask } from "./driver.ts";
import type { AgentEventSink } from "./events.ts";

export const geminiCliSpec: AgentCliSpec = {
  driver: "gemini-cli",
  displayName: "Gemini CLI",
  packageName: "@google/gemini-cli",
  bin: "gemini",
};

/**
 * Gemini CLI speaks only Google's Gemini API (POST /v1beta/models/<model>:streamGenerateContent,
 * pointed elsewhere with GOOGLE_GEMINI_BASE_URL). The gateway serves the Anthropic and OpenAI
 * protocols, not that one, and nightshift never lets an agent talk to a provider directly, so this
 * driver detects the CLI and then refuses, clearly, instead of pretending.
 */
export function geminiProtocolError(): NightshiftError {
  return new NightshiftError(
    "agent_protocol_unsupported",
    "Gemini CLI cannot work through the nightshift gateway yet: it needs the Gemini API protocol " +
      "(streamGenerateContent), which the gateway does not serve (it serves Anthropic Messages, " +
      "OpenAI Chat Completions and OpenAI Responses)",
    {
      hint: 'use [agent] driver = "claude-code", "codex" or "opencode" (OpenCode can run Gemini models through an OpenAI-compatible provider)',
    },
  );
}

export class GeminiCliDriver implements AgentDriver {
  readonly name = "gemini-cli";

  constructor(private readonly options: LocateOptions = {}) {}

  /** Reports a missing CLI first (the install hint), then the protocol gap. */
  async preflight(): Promise<LocatedCli> {
    await locateCli(geminiCliSpec, this.options);
    throw geminiProtocolError();
  }

  async run(_task: AgentTask, emit: AgentEventSink, _signal: AbortSignal): Promise<AgentResult> {
    const summary = await this.preflight().then(
      () => "unreachable: preflight always refuses",
      (error: unknown) => describeError(error),
    );
    emit({ kind: "error", message: summary });
    return { reason: "error", summary, inputTokens: 0, outputTokens: 0 };
  }
}
