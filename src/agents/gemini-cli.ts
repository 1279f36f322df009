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
import { num, obj, str } from "./cli/json-lines.ts";
import type { AgentTask } from "./driver.ts";

export const geminiCliSpec: AgentCliSpec = {
  driver: "gemini-cli",
  displayName: "Gemini CLI",
  packageName: "@google/gemini-cli",
  bin: "gemini",
};

export interface GeminiCliOptions extends CliDriverOptions {
  /**
   * "yolo": every tool without asking, for runs that nightshift's sandbox confines. "auto_edit":
   * file edits only; shell commands are refused, since nobody is there to approve them.
   */
  approvalMode?: "yolo" | "auto_edit";
  /** Tools the agent never gets. Default: the web tools, which would reach past the gateway. */
  excludeTools?: string[];
}

const DEFAULT_EXCLUDED = ["web_fetch", "google_web_search"];
const MAX_TOOL_OUTPUT_IN_EVENT = 4_000;

/**
 * Gemini CLI in headless mode (`gemini -p … --output-format stream-json`), talking Google's
 * Gemini API to the gateway (GOOGLE_GEMINI_BASE_URL) with the run's scoped key as its API key.
 */
export function geminiCliDriver(options: GeminiCliOptions = {}): CliAgentDriver {
  return new CliAgentDriver(new GeminiCliAdapter(options), options);
}

/** The driver as a class, for callers that construct drivers with `new`. */
export class GeminiCliDriver extends CliAgentDriver {
  constructor(options: GeminiCliOptions = {}) {
    super(new GeminiCliAdapter(options), options);
  }
}

class GeminiCliAdapter implements CliAdapter {
  readonly spec = geminiCliSpec;

  constructor(private readonly options: GeminiCliOptions) {}

  async prepare({ task, home, instructions }: CliRunContext): Promise<PreparedRun> {
    const dir = path.join(home.home, ".gemini");
    await mkdir(dir, { recursive: true });
    if (instructions !== undefined) {
      // The user-level memory file: Gemini CLI reads it in every session, next to the
      // repository's own GEMINI.md.
      await writeFile(path.join(dir, "GEMINI.md"), instructions, "utf8");
    }
    const excluded = this.options.excludeTools ?? DEFAULT_EXCLUDED;
    const settings = {
      // An API key, not a Google login: the only kind of auth that honours GOOGLE_GEMINI_BASE_URL.
      security: { auth: { selectedType: "gemini-api-key" }, folderTrust: { enabled: false } },
      general: {
        enableAutoUpdate: false,
        enableAutoUpdateNotification: false,
        checkpointing: { enabled: false },
      },
      privacy: { usageStatisticsEnabled: false },
      telemetry: { enabled: false },
      ide: { enabled: false },
      // The CLI's own turn limit: it ends with a "max session turns" result past it.
      model: { name: task.model, maxSessionTurns: task.maxSteps },
      ...(excluded.length > 0 ? { tools: { exclude: excluded } } : {}),
    };
    await writeFile(path.join(dir, "settings.json"), JSON.stringify(settings, null, 2), "utf8");
    const approval = this.options.approvalMode ?? "yolo";
    const args = [
      "--output-format",
      "stream-json",
      "--approval-mode",
      approval,
      "--model",
      task.model,
      // One argument with "=", so that a prompt starting with a dash is not read as a flag.
      `--prompt=${task.prompt}`,
    ];
    return {
      args,
      env: {
        // The Google GenAI client appends /v1beta/models/<model>:… itself.
        GOOGLE_GEMINI_BASE_URL: task.endpoint.baseURL.replace(/\/v1\/?$/, ""),
        GEMINI_API_KEY: task.endpoint.apiKey,
        GEMINI_MODEL: task.model,
        // Headless in a fresh worktree: trust it rather than fall back to asking for every tool.
        GEMINI_CLI_TRUST_WORKSPACE: "true",
        // No telemetry or update checks past the gateway (also off in settings.json).
        GEMINI_TELEMETRY_ENABLED: "false",
        NO_BROWSER: "true",
      },
    };
  }

  parser(_task: AgentTask): CliOutputParser {
    return new GeminiCliParser();
  }
}

/**
 * Reads `--output-format stream-json`: `init`, `message` (the user's prompt, then the model's text
 * as deltas), `tool_use` / `tool_result` (paired by tool_id), `error` (warnings and turn-level
 * failures) and a final `result` with status and stats. A model turn is what lies between tool
 * results: the CLI sends one request, prints its text and tool calls, then runs the tools.
 */
export class GeminiCliParser implements CliOutputParser {
  private readonly toolNames = new Map<string, string>();
  private text = "";
  private lastText = "";
  private inTurn = false;
  private lastError: string | undefined;
  private ending: CliVerdict | undefined;

  accept(event: Record<string, unknown>, out: ParserOutput): void {
    switch (event.type) {
      case "message":
        if (event.role === "assistant") {
          this.startTurn(out);
          this.text += str(event.content) ?? "";
        }
        break;
      case "tool_use":
        this.startTurn(out);
        this.flushText(out);
        this.toolUse(event, out);
        break;
      case "tool_result":
        this.flushText(out);
        this.inTurn = false;
        this.toolResult(event, out);
        break;
      case "error":
        this.flushText(out);
        this.lastError = str(event.message) ?? this.lastError;
        if (event.severity !== "warning" && this.lastError) {
          out.emit({ kind: "error", message: `Gemini CLI: ${this.lastError}` });
        }
        break;
      case "result":
        this.flushText(out);
        this.result(event, out);
        break;
      default:
        break;
    }
  }

  verdict(): CliVerdict | undefined {
    return this.ending;
  }

  private startTurn(out: ParserOutput): void {
    if (this.inTurn) return;
    this.inTurn = true;
    this.lastText = "";
    out.turn();
  }

  /** The model's text arrives in deltas; it becomes one message when something else comes. */
  private flushText(out: ParserOutput): void {
    const text = this.text;
    this.text = "";
    if (!text.trim()) return;
    this.lastText = text;
    out.emit({ kind: "message", text });
  }

  private toolUse(event: Record<string, unknown>, out: ParserOutput): void {
    const callId = str(event.tool_id) ?? "";
    const tool = str(event.tool_name) ?? "unknown";
    this.toolNames.set(callId, tool);
    out.emit({ kind: "tool_call", callId, tool, input: event.parameters ?? null });
  }

  private toolResult(event: Record<string, unknown>, out: ParserOutput): void {
    const callId = str(event.tool_id) ?? "";
    const error = obj(event.error);
    const output = str(event.output) ?? str(error?.message) ?? "";
    out.emit({
      kind: "tool_result",
      callId,
      tool: this.toolNames.get(callId) ?? "unknown",
      output: output.slice(0, MAX_TOOL_OUTPUT_IN_EVENT),
      isError: event.status === "error",
    });
  }

  private result(event: Record<string, unknown>, out: ParserOutput): void {
    const stats = obj(event.stats);
    if (stats) {
      // input_tokens is the prompt including cached tokens, as the gateway meters it.
      out.emit({
        kind: "usage",
        inputTokens: num(stats.input_tokens),
        outputTokens: num(stats.output_tokens),
      });
    }
    const error = obj(event.error);
    const raw = str(error?.message) ?? this.lastError;
    const message = raw === undefined ? undefined : readableApiError(raw);
    if (event.status === "success") {
      this.ending = { reason: "completed", summary: this.lastText.trim() || "(no summary)" };
    } else if (
      str(error?.type) === "FatalTurnLimitedError" ||
      /max session turns/i.test(message ?? "")
    ) {
      this.ending = {
        reason: "max_steps",
        summary: "Gemini CLI hit its turn limit (model.maxSessionTurns)",
      };
    } else {
      this.ending = {
        reason: "error",
        summary: `Gemini CLI failed: ${message ?? `result ${str(event.status) ?? "without a status"}`}`,
      };
    }
  }
}

/**
 * The CLI reports an API failure as `[API Error: {"error":{"code":400,"message":…}}]`: the
 * provider's message is what a person needs, so it is pulled out of the JSON when it is there.
 */
export function readableApiError(message: string): string {
  const match = /^\[API Error: (\{.*\})\]$/s.exec(message.trim());
  if (!match?.[1]) return message;
  try {
    const body = JSON.parse(match[1]) as { error?: { code?: unknown; message?: unknown } };
    const inner = body.error?.message;
    if (typeof inner !== "string") return message;
    const code = typeof body.error?.code === "number" ? `${body.error.code} ` : "";
    return `API Error: ${code}${inner}`;
  } catch {
    return message;
  }
}
