import { realpath } from "node:fs/promises";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import {
  generateText,
  type StepResult,
  type StopCondition,
  stepCountIs,
  type ToolSet,
  tool,
} from "ai";
import { z } from "zod";
import type { AgentDriver, AgentResult, AgentTask } from "./driver.ts";
import type { AgentEventSink } from "./events.ts";
import { ToolError, WorkspaceTools } from "./workspace-tools.ts";

const SYSTEM_PROMPT = `You are a careful software engineer working unattended on one work order.
Use the tools to inspect the repository, make the change, and run the tests. Keep changes small and
focused on the order. When the work is done and the tests pass, reply with a one-line summary and no
tool call.`;

const MAX_TOOL_OUTPUT_IN_EVENT = 4_000;

/**
 * nightshift's own agent: a tool loop over any OpenAI-compatible endpoint, built on the `ai` SDK.
 */
export class BuiltinAgent implements AgentDriver {
  readonly name = "builtin";

  async run(task: AgentTask, emit: AgentEventSink, signal: AbortSignal): Promise<AgentResult> {
    const workspace = new WorkspaceTools(
      await realpath(task.workspacePath),
      emit,
      task.commandTimeoutMs,
      signal,
      task.sandbox,
    );
    const provider = createOpenAICompatible({
      name: "nightshift",
      baseURL: task.endpoint.baseURL,
      apiKey: task.endpoint.apiKey,
      includeUsage: true,
    });
    let inputTokens = 0;
    let outputTokens = 0;
    // biome-ignore lint/suspicious/noExplicitAny: a stop condition that ignores the tool types
    const overBudget: StopCondition<any> = () => inputTokens + outputTokens >= task.maxTokens;
    try {
      const result = await generateText({
        model: provider.chatModel(task.model),
        system: SYSTEM_PROMPT,
        prompt: task.prompt,
        tools: workspaceToolSet(workspace),
        stopWhen: [stepCountIs(task.maxSteps), overBudget],
        abortSignal: signal,
        maxRetries: 2,
        onStepFinish: (step) => {
          inputTokens += step.usage.inputTokens ?? 0;
          outputTokens += step.usage.outputTokens ?? 0;
          emitStep(step, emit);
        },
      });
      const usage = { inputTokens, outputTokens };
      if (inputTokens + outputTokens >= task.maxTokens && result.finishReason === "tool-calls") {
        return {
          reason: "budget",
          summary: `stopped at the token budget of ${task.maxTokens}`,
          ...usage,
        };
      }
      if (result.finishReason === "tool-calls") {
        return { reason: "max_steps", summary: `stopped after ${task.maxSteps} steps`, ...usage };
      }
      return { reason: "completed", summary: result.text.trim() || "(no summary)", ...usage };
    } catch (error) {
      const usage = { inputTokens, outputTokens };
      if (signal.aborted) return { reason: "aborted", summary: "the run was cancelled", ...usage };
      const message = `model request failed: ${(error as Error).message}`;
      emit({ kind: "error", message });
      return { reason: "error", summary: message, ...usage };
    }
  }
}

function workspaceToolSet(workspace: WorkspaceTools) {
  // Tool failures go back to the model as text so it can correct itself.
  const safely =
    <A>(fn: (args: A) => Promise<string>) =>
    async (args: A) => {
      try {
        return await fn(args);
      } catch (error) {
        if (error instanceof ToolError) return `error: ${error.message}`;
        throw error;
      }
    };
  return {
    read_file: tool({
      description: "Read a text file of the workspace.",
      inputSchema: z.object({ path: z.string().describe("path relative to the workspace") }),
      execute: safely(({ path }) => workspace.readFile(path)),
    }),
    write_file: tool({
      description: "Create or overwrite a file with the given content.",
      inputSchema: z.object({ path: z.string(), content: z.string() }),
      execute: safely(({ path, content }) => workspace.writeFile(path, content)),
    }),
    edit_file: tool({
      description: "Replace one exact occurrence of old_string with new_string in a file.",
      inputSchema: z.object({ path: z.string(), old_string: z.string(), new_string: z.string() }),
      execute: safely(({ path, old_string, new_string }) =>
        workspace.editFile(path, old_string, new_string),
      ),
    }),
    list_files: tool({
      description: "List files under a folder of the workspace (default: all).",
      inputSchema: z.object({ path: z.string().optional() }),
      execute: safely(({ path }) => workspace.listFiles(path)),
    }),
    search: tool({
      description: "Search file contents for a regular expression; prints file:line: text.",
      inputSchema: z.object({ pattern: z.string(), path: z.string().optional() }),
      execute: safely(({ pattern, path }) => workspace.search(pattern, path)),
    }),
    run_command: tool({
      description: "Run a shell command in the workspace; prints the exit code and output.",
      inputSchema: z.object({ command: z.string() }),
      execute: safely(({ command }) => workspace.runCommand(command)),
    }),
  };
}

function emitStep(step: StepResult<ToolSet>, emit: AgentEventSink): void {
  for (const part of step.content) {
    switch (part.type) {
      case "text":
        if (part.text.trim()) emit({ kind: "message", text: part.text });
        break;
      case "tool-call":
        emit({
          kind: "tool_call",
          callId: part.toolCallId,
          tool: part.toolName,
          input: part.input,
        });
        break;
      case "tool-result": {
        const output = String(part.output);
        emit({
          kind: "tool_result",
          callId: part.toolCallId,
          tool: part.toolName,
          output: output.slice(0, MAX_TOOL_OUTPUT_IN_EVENT),
          isError: output.startsWith("error: "),
        });
        break;
      }
      case "tool-error":
        emit({
          kind: "tool_result",
          callId: part.toolCallId,
          tool: part.toolName,
          output: String(part.error instanceof Error ? part.error.message : part.error),
          isError: true,
        });
        break;
      default:
        break;
    }
  }
  emit({
    kind: "usage",
    inputTokens: step.usage.inputTokens ?? 0,
    outputTokens: step.usage.outputTokens ?? 0,
  });
}
