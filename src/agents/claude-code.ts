import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  type CliAdapter,
  CliAgentDriver,
  type CliDriverOptions,
  type CliOutputParser,
  type CliRunContext,
  type CliVerdict,
  type ParserOutput,
  type PreparedRun,
} from "./cli/cli-driver.ts";
import type { AgentCliSpec } from "./cli/detect.ts";
import { arr, num, obj, str } from "./cli/json-lines.ts";
import type { AgentTask } from "./driver.ts";

export const claudeCodeSpec: AgentCliSpec = {
  driver: "claude-code",
  displayName: "Claude Code",
  packageName: "@anthropic-ai/claude-code",
  bin: "claude",
};

export interface ClaudeCodeOptions extends CliDriverOptions {
  /**
   * "bypassPermissions": every tool without asking (--dangerously-skip-permissions), for runs that
   * nightshift's sandbox confines. "acceptEdits": file edits only; shell commands are refused, since
   * nobody is there to approve them.
   */
  permissionMode?: "bypassPermissions" | "acceptEdits";
  /** Tools the agent never gets. Default: the web tools, which would reach past the gateway. */
  disallowedTools?: string[];
}

const DEFAULT_DISALLOWED = ["WebFetch", "WebSearch"];
const MAX_TOOL_OUTPUT_IN_EVENT = 4_000;

/** Claude Code in print mode (`claude -p`), streaming its session as JSON lines. */
export function claudeCodeDriver(options: ClaudeCodeOptions = {}): CliAgentDriver {
  return new CliAgentDriver(new ClaudeCodeAdapter(options), options);
}

class ClaudeCodeAdapter implements CliAdapter {
  readonly spec = claudeCodeSpec;

  constructor(private readonly options: ClaudeCodeOptions) {}

  async prepare({ task, home, instructions }: CliRunContext): Promise<PreparedRun> {
    if (instructions !== undefined) {
      // The user-level memory file: Claude Code reads it in every session, next to the
      // repository's own CLAUDE.md.
      await mkdir(path.join(home.home, ".claude"), { recursive: true });
      await writeFile(path.join(home.home, ".claude", "CLAUDE.md"), instructions, "utf8");
    }
    const bypass = (this.options.permissionMode ?? "bypassPermissions") === "bypassPermissions";
    const disallowed = this.options.disallowedTools ?? DEFAULT_DISALLOWED;
    const args = [
      "-p",
      "--output-format",
      "stream-json",
      "--verbose",
      "--max-turns",
      String(task.maxSteps),
      "--model",
      task.model,
      ...(bypass ? ["--dangerously-skip-permissions"] : ["--permission-mode", "acceptEdits"]),
      ...(disallowed.length > 0 ? ["--disallowedTools", disallowed.join(",")] : []),
      // After "--", so that neither a variadic flag nor a leading dash can swallow the prompt.
      "--",
      task.prompt,
    ];
    const model = task.model;
    return {
      args,
      env: {
        // The Anthropic client appends /v1/messages itself.
        ANTHROPIC_BASE_URL: task.endpoint.baseURL.replace(/\/v1\/?$/, ""),
        ANTHROPIC_API_KEY: task.endpoint.apiKey,
        // Every request goes to the one model the factory pays for (and the gateway prices):
        // no background requests to a "small fast" model, no subagents on another one.
        ANTHROPIC_DEFAULT_OPUS_MODEL: model,
        ANTHROPIC_DEFAULT_SONNET_MODEL: model,
        ANTHROPIC_DEFAULT_HAIKU_MODEL: model,
        ANTHROPIC_SMALL_FAST_MODEL: model,
        CLAUDE_CODE_SUBAGENT_MODEL: model,
        // No telemetry, error reports, update checks or other traffic past the gateway.
        DISABLE_TELEMETRY: "1",
        DISABLE_ERROR_REPORTING: "1",
        DISABLE_AUTOUPDATER: "1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        CLAUDE_CODE_DISABLE_TERMINAL_TITLE: "1",
        // The gateway already retries rate limits and server errors upstream; Claude Code's own
        // ten retries with backoff would keep a run on a refused key (401) busy for minutes
        // before it reports the failure the gateway saw at once.
        CLAUDE_CODE_MAX_RETRIES: "1",
        // --dangerously-skip-permissions is refused as root unless the CLI is told it is sandboxed.
        ...(bypass ? { IS_SANDBOX: "1" } : {}),
      },
    };
  }

  parser(_task: AgentTask): CliOutputParser {
    return new ClaudeCodeParser();
  }
}

/**
 * Reads `--output-format stream-json`: `system` (init), `assistant` (one line per content block,
 * repeating the message id), `user` (tool results) and a final `result` with usage and outcome.
 * An API failure still says subtype "success" but `is_error: true`, so is_error decides.
 */
export class ClaudeCodeParser implements CliOutputParser {
  private readonly toolNames = new Map<string, string>();
  private readonly messages = new Set<string>();
  private ending: CliVerdict | undefined;

  accept(event: Record<string, unknown>, out: ParserOutput): void {
    switch (event.type) {
      case "assistant":
        this.assistant(obj(event.message), out);
        break;
      case "user":
        this.user(obj(event.message), out);
        break;
      case "result":
        this.result(event, out);
        break;
      default:
        break;
    }
  }

  verdict(): CliVerdict | undefined {
    return this.ending;
  }

  private assistant(message: Record<string, unknown> | undefined, out: ParserOutput): void {
    if (!message) return;
    const id = str(message.id);
    if (id && !this.messages.has(id)) {
      this.messages.add(id);
      out.turn();
    }
    for (const block of arr(message.content).map(obj)) {
      if (block?.type === "text") {
        const text = str(block.text);
        if (text?.trim()) out.emit({ kind: "message", text });
      } else if (block?.type === "tool_use") {
        const callId = str(block.id) ?? "";
        const tool = str(block.name) ?? "unknown";
        this.toolNames.set(callId, tool);
        out.emit({ kind: "tool_call", callId, tool, input: block.input ?? null });
      }
    }
  }

  private user(message: Record<string, unknown> | undefined, out: ParserOutput): void {
    for (const block of arr(message?.content).map(obj)) {
      if (block?.type !== "tool_result") continue;
      const callId = str(block.tool_use_id) ?? "";
      out.emit({
        kind: "tool_result",
        callId,
        tool: this.toolNames.get(callId) ?? "unknown",
        output: resultText(block.content).slice(0, MAX_TOOL_OUTPUT_IN_EVENT),
        isError: block.is_error === true,
      });
    }
  }

  private result(event: Record<string, unknown>, out: ParserOutput): void {
    const usage = obj(event.usage);
    if (usage) {
      // Anthropic's input_tokens leaves out cache reads and writes; the gateway counts them in.
      out.emit({
        kind: "usage",
        inputTokens:
          num(usage.input_tokens) +
          num(usage.cache_creation_input_tokens) +
          num(usage.cache_read_input_tokens),
        outputTokens: num(usage.output_tokens),
      });
    }
    const text = str(event.result)?.trim() ?? "";
    const errors = arr(event.errors).map(str).filter(Boolean).join("; ");
    if (event.subtype === "error_max_turns") {
      this.ending = {
        reason: "max_steps",
        summary: `Claude Code hit its turn limit (--max-turns)`,
      };
    } else if (event.subtype === "success" && event.is_error !== true) {
      this.ending = { reason: "completed", summary: text || "(no summary)" };
    } else {
      const why = text || errors || `result ${str(event.subtype) ?? "without a subtype"}`;
      this.ending = { reason: "error", summary: `Claude Code failed: ${why}` };
    }
  }
}

function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  return arr(content)
    .map(obj)
    .map((block) => (block?.type === "text" ? (str(block.text) ?? "") : ""))
    .filter(Boolean)
    .join("\n");
}
