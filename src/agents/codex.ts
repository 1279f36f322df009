import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { stringify } from "smol-toml";
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

export const codexSpec: AgentCliSpec = {
  driver: "codex",
  displayName: "Codex",
  packageName: "@openai/codex",
  bin: "codex",
};

export interface CodexOptions extends CliDriverOptions {
  /**
   * Codex's own sandbox for the commands it runs, when nightshift's does not wrap it (no sandbox,
   * or backend "none"): "workspace-write" (its bubblewrap + seccomp: writes only in the
   * workspace) or "danger-full-access" (none). Inside nightshift's sandbox Codex always runs
   * with "danger-full-access": its own bubblewrap cannot start there (nightshift's sandbox forbids
   * new user namespaces: "bwrap: Creating new namespace failed: nesting depth or
   * /proc/sys/user/max_*_namespaces exceeded"), and nightshift's walls already confine Codex and
   * every command it runs.
   */
  sandbox?: "workspace-write" | "danger-full-access";
}

/** The environment variable that carries the run's scoped key to Codex's provider config. */
const KEY_VARIABLE = "NIGHTSHIFT_GATEWAY_KEY";
const PROVIDER = "nightshift";
const MAX_TOOL_OUTPUT_IN_EVENT = 4_000;

/** Codex in exec mode (`codex exec --json`), talking the Responses API to the gateway. */
export function codexDriver(options: CodexOptions = {}): CliAgentDriver {
  return new CliAgentDriver(new CodexAdapter(options), options);
}

class CodexAdapter implements CliAdapter {
  readonly spec = codexSpec;

  constructor(private readonly options: CodexOptions) {}

  async prepare({ task, home, instructions }: CliRunContext): Promise<PreparedRun> {
    // Wrapped by nightshift's sandbox, Codex's own cannot nest inside it (see CodexOptions).
    const wrapped = task.sandbox !== undefined && task.sandbox.backend !== "none";
    const sandboxMode = wrapped
      ? "danger-full-access"
      : (this.options.sandbox ?? "workspace-write");
    const codexHome = path.join(home.home, ".codex");
    await mkdir(codexHome, { recursive: true });
    // A config file rather than -c flags: one place, and TOML quoting done by a TOML writer.
    const config = {
      model: task.model,
      model_provider: PROVIDER,
      approval_policy: "never",
      sandbox_mode: sandboxMode,
      // Quiet: no update check, no analytics, no plugin or app marketplaces, no hosted web search.
      check_for_update_on_startup: false,
      web_search: "disabled",
      analytics: { enabled: false },
      features: { plugins: false, remote_plugin: false, apps: false },
      model_providers: {
        [PROVIDER]: {
          name: "nightshift gateway",
          base_url: task.endpoint.baseURL,
          env_key: KEY_VARIABLE,
          wire_api: "responses",
        },
      },
    };
    await writeFile(path.join(codexHome, "config.toml"), stringify(config), "utf8");
    if (instructions !== undefined) {
      // Codex's global instructions file, read alongside the repository's own AGENTS.md.
      await writeFile(path.join(codexHome, "AGENTS.md"), instructions, "utf8");
    }
    return {
      args: [
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--ephemeral",
        "--color",
        "never",
        "-m",
        task.model,
        "-s",
        sandboxMode,
        "-C",
        task.workspacePath,
        "--",
        task.prompt,
      ],
      env: { CODEX_HOME: codexHome, [KEY_VARIABLE]: task.endpoint.apiKey },
    };
  }

  parser(_task: AgentTask): CliOutputParser {
    return new CodexParser();
  }
}

/**
 * Reads `codex exec --json`: thread.started, turn.started, item.started / item.completed (agent
 * messages, command executions, file changes, tool calls, errors), then turn.completed with usage
 * or turn.failed. Codex has no turn limit of its own: every tool call counts as a turn here, and
 * the driver stops it past max_steps.
 */
export class CodexParser implements CliOutputParser {
  private lastMessage = "";
  private ending: CliVerdict | undefined;
  private lastError = "";

  accept(event: Record<string, unknown>, out: ParserOutput): void {
    switch (event.type) {
      case "item.started":
        this.started(obj(event.item), out);
        break;
      case "item.completed":
        this.completed(obj(event.item), out);
        break;
      case "turn.completed": {
        const usage = obj(event.usage);
        // OpenAI's input_tokens already include the cached ones.
        out.emit({
          kind: "usage",
          inputTokens: num(usage?.input_tokens),
          outputTokens: num(usage?.output_tokens),
        });
        this.ending = { reason: "completed", summary: this.lastMessage || "(no summary)" };
        break;
      }
      case "turn.failed": {
        const message = str(obj(event.error)?.message) ?? (this.lastError || "no reason given");
        this.ending = { reason: "error", summary: `Codex failed: ${message}` };
        break;
      }
      case "error": {
        const message = str(event.message) ?? "unknown error";
        this.lastError = message;
        out.emit({ kind: "error", message: `Codex: ${message}` });
        break;
      }
      default:
        break;
    }
  }

  verdict(): CliVerdict | undefined {
    return this.ending;
  }

  private started(item: Record<string, unknown> | undefined, out: ParserOutput): void {
    if (item?.type !== "command_execution") return;
    out.turn();
    out.emit({
      kind: "tool_call",
      callId: str(item.id) ?? "",
      tool: "command_execution",
      input: { command: str(item.command) ?? "" },
    });
  }

  private completed(item: Record<string, unknown> | undefined, out: ParserOutput): void {
    const callId = str(item?.id) ?? "";
    switch (item?.type) {
      case "agent_message": {
        const text = str(item.text) ?? "";
        if (text.trim()) {
          this.lastMessage = text.trim();
          out.emit({ kind: "message", text });
        }
        break;
      }
      case "command_execution":
        out.emit({
          kind: "tool_result",
          callId,
          tool: "command_execution",
          output: (str(item.aggregated_output) ?? "").slice(-MAX_TOOL_OUTPUT_IN_EVENT),
          isError: item.exit_code !== 0 || item.status === "failed",
        });
        break;
      case "file_change":
      case "mcp_tool_call":
      case "web_search": {
        // Reported once, when done: a call and its result together.
        out.turn();
        const tool = item.type === "mcp_tool_call" ? `mcp:${str(item.tool) ?? "?"}` : item.type;
        out.emit({ kind: "tool_call", callId, tool, input: item });
        out.emit({
          kind: "tool_result",
          callId,
          tool,
          output: str(item.status) ?? "",
          isError: item.status === "failed",
        });
        break;
      }
      case "error":
        // Codex reports warnings as error items (e.g. an unknown model's metadata) and goes on.
        out.emit({ kind: "error", message: `Codex: ${str(item.message) ?? "unknown error"}` });
        break;
      default:
        break;
    }
  }
}
