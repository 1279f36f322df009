import { type ChatMessage, type ChatRequest, contentText } from "../openai-chat.ts";
import { safeJson } from "../safe-json.ts";
import { splitSystem } from "./system-prompt.ts";
import type { NeutralRequest, TranslateOptions } from "./types.ts";

/** Anthropic requires max_tokens; this is used when the client set no limit. */
export const DEFAULT_ANTHROPIC_MAX_TOKENS = 8192;

type Block = Record<string, unknown> & { type: string };
interface Turn {
  role: "user" | "assistant";
  content: Block[];
}

/** Tool input must be an object; arguments the model wrote that are not one become `{}`. */
function toolInput(args: string): Record<string, unknown> {
  const parsed = safeJson(args);
  return parsed && typeof parsed === "object" && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : {};
}

// Anthropic refuses empty text blocks.
const textBlocks = (text: string): Block[] => (text === "" ? [] : [{ type: "text", text }]);

function blocksOf(message: ChatMessage): Block[] {
  if (message.role === "tool") {
    const text = contentText(message.content);
    return [
      {
        type: "tool_result",
        tool_use_id: message.tool_call_id,
        ...(text ? { content: text } : {}),
      },
    ];
  }
  const blocks = textBlocks(contentText(message.content));
  if (message.role !== "assistant") return blocks;
  for (const call of message.tool_calls ?? []) {
    const input = toolInput(call.function.arguments);
    blocks.push({ type: "tool_use", id: call.id, name: call.function.name, input });
  }
  return blocks;
}

// Roles must alternate and a user turn must open with its tool results: consecutive tool and user
// messages merge into one user turn, results first.
function turnsOf(messages: readonly ChatMessage[]): Turn[] {
  const turns: Turn[] = [];
  for (const message of messages) {
    const role = message.role === "assistant" ? "assistant" : "user";
    const blocks = blocksOf(message);
    if (blocks.length === 0) continue;
    const last = turns.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  }
  for (const turn of turns) {
    if (turn.role === "user") turn.content.sort((a, b) => rank(a) - rank(b));
  }
  return turns;
}

const rank = (block: Block): number => (block.type === "tool_result" ? 0 : 1);

function toolChoice(choice: ChatRequest["tool_choice"], parallel: boolean | undefined) {
  let out: Record<string, unknown> | undefined;
  if (choice === "required") out = { type: "any" };
  else if (choice === "none") return { type: "none" };
  else if (choice === "auto") out = { type: "auto" };
  else if (choice) out = { type: "tool", name: choice.function.name };
  return parallel === false
    ? { ...(out ?? { type: "auto" }), disable_parallel_tool_use: true }
    : out;
}

function tools(chat: ChatRequest) {
  return (chat.tools ?? []).map((tool) => ({
    name: tool.function.name,
    ...(tool.function.description ? { description: tool.function.description } : {}),
    input_schema: tool.function.parameters ?? { type: "object", properties: {} },
  }));
}

/** The Messages body for a neutral request. */
export function anthropicUpstreamBody(
  request: NeutralRequest,
  options: TranslateOptions,
): Record<string, unknown> {
  const { chat } = request;
  const { system, rest } = splitSystem(chat.messages);
  const defs = tools(chat);
  const choice = defs.length ? toolChoice(chat.tool_choice, request.parallelToolCalls) : undefined;
  return {
    model: options.upstreamModel,
    max_tokens: chat.max_completion_tokens ?? chat.max_tokens ?? DEFAULT_ANTHROPIC_MAX_TOKENS,
    ...(system ? { system } : {}),
    messages: turnsOf(rest),
    ...(defs.length ? { tools: defs } : {}),
    ...(choice ? { tool_choice: choice } : {}),
    // Anthropic's temperature range is 0..1, OpenAI's and Gemini's 0..2.
    ...(chat.temperature != null ? { temperature: Math.min(1, chat.temperature) } : {}),
    ...(request.topP !== undefined ? { top_p: request.topP } : {}),
    ...(request.stop ? { stop_sequences: request.stop } : {}),
    stream: request.stream,
  };
}
