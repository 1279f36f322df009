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

export const openCodeSpec: AgentCliSpec = {
  driver: "opencode",
  displayName: "OpenCode",
  packageName: "opencode-ai",
  bin: "opencode",
};

export type OpenCodeOptions = CliDriverOptions;

const KEY_VARIABLE = "NIGHTSHIFT_GATEWAY_KEY";
const PROVIDER = "nightshift";
const MAX_TOOL_OUTPUT_IN_EVENT = 4_000;

/** OpenCode's one-shot mode (`opencode run --format json`) on an OpenAI-compatible provider. */
export function openCodeDriver(options: OpenCodeOptions = {}): CliAgentDriver {
  return new CliAgentDriver(new OpenCodeAdapter(), options);
}

class OpenCodeAdapter implements CliAdapter {
  readonly spec = openCodeSpec;

  async prepare({ task, home, instructions }: CliRunContext): Promise<PreparedRun> {
    const configDir = path.join(home.configHome, "opencode");
    await mkdir(path.join(configDir, "node_modules"), { recursive: true });
    // OpenCode runs `npm install @opencode-ai/plugin` in every config folder unless a lockfile
    // already lists it: this marker stops that registry download (plugins are off with --pure).
    await writeFile(
      path.join(configDir, "package-lock.json"),
      JSON.stringify({ packages: { "": { dependencies: { "@opencode-ai/plugin": "*" } } } }),
    );
    const instructionFiles: string[] = [];
    if (instructions !== undefined) {
      const file = path.join(configDir, "nightshift-instructions.md");
      await writeFile(file, instructions, "utf8");
      instructionFiles.push(file);
    }
    const model = `${PROVIDER}/${task.model}`;
    const config = {
      $schema: "https://opencode.ai/config.json",
      autoupdate: false,
      share: "disabled",
      model,
      // Titles and summaries would otherwise go to a second, "small" model.
      small_model: model,
      provider: {
        [PROVIDER]: {
          // Bundled in the opencode binary: nothing is downloaded for it.
          npm: "@ai-sdk/openai-compatible",
          name: "nightshift gateway",
          options: { baseURL: task.endpoint.baseURL, apiKey: `{env:${KEY_VARIABLE}}` },
          models: { [task.model]: { name: task.model } },
        },
      },
      // Nobody is there to answer a permission prompt; the web stays out of reach.
      permission: { edit: "allow", bash: "allow", webfetch: "deny" },
      agent: { build: { steps: task.maxSteps } },
      ...(instructionFiles.length > 0 ? { instructions: instructionFiles } : {}),
    };
    await writeFile(path.join(configDir, "opencode.json"), JSON.stringify(config, null, 2));
    return {
      args: [
        "run",
        "--format",
        "json",
        // No external plugins; a set title skips the extra request that would name the session.
        "--pure",
        "--title",
        "nightshift run",
        "-m",
        model,
        "--",
        task.prompt,
      ],
      env: {
        [KEY_VARIABLE]: task.endpoint.apiKey,
        OPENCODE_DISABLE_AUTOUPDATE: "1",
        OPENCODE_DISABLE_MODELS_FETCH: "1",
        OPENCODE_DISABLE_LSP_DOWNLOAD: "1",
        OPENCODE_DISABLE_SHARE: "1",
        OPENCODE_DISABLE_DEFAULT_PLUGINS: "1",
        OPENCODE_DISABLE_EXTERNAL_SKILLS: "1",
        // It would otherwise read ~/.claude and the repository's Claude Code settings too.
        OPENCODE_DISABLE_CLAUDE_CODE: "1",
      },
    };
  }

  parser(_task: AgentTask): CliOutputParser {
    return new OpenCodeParser();
  }
}

/**
 * Reads `opencode run --format json`: per model step a step_start, its text and tool_use parts
 * (a tool part arrives once, finished, with input and output), and a step_finish with the step's
 * tokens. There is no closing event: a clean exit after steps means done; an `error` event fails.
 */
export class OpenCodeParser implements CliOutputParser {
  private steps = 0;
  private lastText = "";
  private failure: string | undefined;

  accept(event: Record<string, unknown>, out: ParserOutput): void {
    const part = obj(event.part);
    switch (event.type) {
      case "step_start":
        out.turn();
        break;
      case "text": {
        const text = str(part?.text) ?? "";
        if (text.trim()) {
          this.lastText = text.trim();
          out.emit({ kind: "message", text });
        }
        break;
      }
      case "tool_use": {
        const state = obj(part?.state);
        const callId = str(part?.callID) ?? str(part?.id) ?? "";
        const tool = str(part?.tool) ?? "unknown";
        const failed = state?.status === "error";
        out.emit({ kind: "tool_call", callId, tool, input: state?.input ?? null });
        out.emit({
          kind: "tool_result",
          callId,
          tool,
          output: (str(failed ? state?.error : state?.output) ?? "").slice(
            0,
            MAX_TOOL_OUTPUT_IN_EVENT,
          ),
          isError: failed,
        });
        break;
      }
      case "step_finish": {
        this.steps++;
        const tokens = obj(part?.tokens);
        const cache = obj(tokens?.cache);
        // OpenCode subtracts cached tokens from input; the gateway counts the whole prompt.
        out.emit({
          kind: "usage",
          inputTokens: num(tokens?.input) + num(cache?.read) + num(cache?.write),
          outputTokens: num(tokens?.output) + num(tokens?.reasoning),
        });
        break;
      }
      case "error": {
        const error = obj(event.error);
        const message =
          str(obj(error?.data)?.message) ??
          str(error?.message) ??
          str(error?.name) ??
          "unknown error";
        this.failure = message;
        out.emit({ kind: "error", message: `OpenCode: ${message}` });
        break;
      }
      default:
        break;
    }
  }

  verdict(): CliVerdict | undefined {
    if (this.failure) return { reason: "error", summary: `OpenCode failed: ${this.failure}` };
    if (this.steps === 0) return undefined;
    return { reason: "completed", summary: this.lastText || "(no summary)" };
  }
}
