import { z } from "zod";
import type { ChatMessage, ChatRequest, ChatToolDefinition } from "./openai-chat.ts";
import { countTokens, promptText } from "./tokens.ts";
import { parseOrThrow, refineByType } from "./zod-issues.ts";

// Field checks for the block types nightshift reads. Other types (thinking, document, server tool
// results, ...) pass untouched: see refineByType.
const textBlock = z.looseObject({ type: z.literal("text"), text: z.string() });
const toolResultContentBlock = z
  .looseObject({ type: z.string().min(1) })
  .superRefine((block, ctx) => refineByType({ text: textBlock }, block, ctx));
const blockSchemas = {
  text: textBlock,
  image: z.looseObject({ type: z.literal("image"), source: z.looseObject({}) }),
  tool_use: z.looseObject({
    type: z.literal("tool_use"),
    id: z.string().min(1),
    name: z.string().min(1),
    input: z.record(z.string(), z.unknown(), { error: "tool_use input must be an object" }),
  }),
  tool_result: z.looseObject({
    type: z.literal("tool_result"),
    tool_use_id: z.string().min(1),
    content: z
      .union([z.string(), z.array(toolResultContentBlock)], {
        error: "must be a string or an array of content blocks",
      })
      .optional(),
    is_error: z.boolean().optional(),
  }),
};
const contentBlock = z
  .looseObject({ type: z.string({ error: "every content block needs a string `type`" }).min(1) })
  .superRefine((block, ctx) => refineByType(blockSchemas, block, ctx));

const messageSchema = z.looseObject({
  // "system" is the mid-conversation system message (beta mid-conversation-system-2026-04-07):
  // Claude Code 2.1 sends one for any model it does not know to be older, e.g. a simulator model.
  role: z.enum(["user", "assistant", "system"]),
  content: z.union([z.string(), z.array(contentBlock)], {
    error: "must be a string or an array of content blocks",
  }),
});

const toolSchema = z
  .looseObject({
    name: z.string().min(1),
    // Server tools (web_search_..., bash_...) carry a versioned `type` and no input_schema.
    type: z.string().optional(),
    description: z.string().optional(),
    input_schema: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((tool, ctx) => {
    if ((tool.type === undefined || tool.type === "custom") && tool.input_schema === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["input_schema"],
        message: "is required for custom tools (an object JSON schema)",
      });
    }
  });

const toolChoiceSchema = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("auto"), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal("any"), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal("none") }),
  z.looseObject({
    type: z.literal("tool"),
    name: z.string().min(1),
    disable_parallel_tool_use: z.boolean().optional(),
  }),
]);

const systemSchema = z.union([z.string(), z.array(textBlock)], {
  error: "must be a string or an array of text blocks",
});

// Loose: Claude Code sends fields (thinking, context_management, betas in the body, ...) that a
// proxy must forward untouched; only what nightshift relies on is checked.
export const anthropicMessagesRequestSchema = z.looseObject({
  model: z.string().min(1),
  max_tokens: z.number().int().positive(),
  system: systemSchema.optional(),
  messages: z.array(messageSchema).min(1),
  tools: z.array(toolSchema).optional(),
  tool_choice: toolChoiceSchema.optional(),
  stream: z.boolean().optional(),
  metadata: z.looseObject({ user_id: z.string().nullish() }).optional(),
  temperature: z.number().min(0).max(1).optional(),
  stop_sequences: z.array(z.string()).optional(),
});

/** The count_tokens body: a messages request without max_tokens (or stream). */
export const anthropicCountTokensRequestSchema = anthropicMessagesRequestSchema.extend({
  max_tokens: z.number().int().positive().optional(),
});

export type AnthropicMessagesRequest = z.infer<typeof anthropicMessagesRequestSchema>;
export type AnthropicCountTokensRequest = z.infer<typeof anthropicCountTokensRequestSchema>;
export type AnthropicContentBlock = z.infer<typeof contentBlock>;

/** Validates a Messages request body; throws ProtocolError("invalid_request") naming the field. */
export function parseAnthropicRequest(body: unknown): AnthropicMessagesRequest {
  return parseOrThrow(anthropicMessagesRequestSchema, body, "messages request");
}

export function parseAnthropicCountTokensRequest(body: unknown): AnthropicCountTokensRequest {
  return parseOrThrow(anthropicCountTokensRequestSchema, body, "count_tokens request");
}

// Typed views of blocks the schema has already checked (the loose schema types them as {type}).
type TextBlock = { type: "text"; text: string };
type ToolUseBlock = { type: "tool_use"; id: string; name: string; input: Record<string, unknown> };
type ToolResultBlock = {
  type: "tool_result";
  tool_use_id: string;
  content?: string | { type: string; text?: unknown }[];
};

function blocksText(blocks: readonly { type: string; text?: unknown }[]): string {
  return blocks
    .filter((b): b is TextBlock => b.type === "text" && typeof b.text === "string")
    .map((b) => b.text)
    .join("\n");
}

function toolResultText(block: ToolResultBlock): string {
  if (block.content === undefined) return "";
  return typeof block.content === "string" ? block.content : blocksText(block.content);
}

function assistantMessage(blocks: readonly AnthropicContentBlock[]): ChatMessage {
  const text = blocksText(blocks);
  const calls = blocks
    .filter((b): b is AnthropicContentBlock & ToolUseBlock => b.type === "tool_use")
    .map((b) => ({
      id: b.id,
      type: "function" as const,
      function: { name: b.name, arguments: JSON.stringify(b.input) },
    }));
  return {
    role: "assistant",
    content: text === "" ? null : text,
    ...(calls.length > 0 ? { tool_calls: calls } : {}),
  };
}

// Tool results become tool messages first, as Anthropic requires them to lead a user turn; any text
// in the same turn follows as a user message.
function userMessages(blocks: readonly AnthropicContentBlock[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const block of blocks) {
    if (block.type !== "tool_result") continue;
    const result = block as AnthropicContentBlock & ToolResultBlock;
    out.push({ role: "tool", tool_call_id: result.tool_use_id, content: toolResultText(result) });
  }
  const texts = blocks.filter((b): b is AnthropicContentBlock & TextBlock => b.type === "text");
  if (texts.length > 0 || out.length === 0) {
    out.push({ role: "user", content: texts.map((b) => ({ type: "text", text: b.text })) });
  }
  return out;
}

function toolDefinitions(tools: AnthropicMessagesRequest["tools"]): ChatToolDefinition[] {
  return (tools ?? []).map((tool) => ({
    type: "function",
    function: {
      name: tool.name,
      ...(tool.description !== undefined ? { description: tool.description } : {}),
      ...(tool.input_schema !== undefined ? { parameters: tool.input_schema } : {}),
    },
  }));
}

function toolChoice(choice: AnthropicMessagesRequest["tool_choice"]): ChatRequest["tool_choice"] {
  if (!choice) return undefined;
  if (choice.type === "any") return "required";
  if (choice.type === "tool") return { type: "function", function: { name: choice.name } };
  return choice.type;
}

/**
 * The neutral (Chat Completions shaped) form policies and token counting read: the system prompt
 * becomes a system message, tool_use blocks assistant tool_calls with JSON-stringified input,
 * tool_result blocks tool messages. One Anthropic message maps to one assistant message, so the
 * conversation's turn count is the same in both forms.
 */
export function anthropicToChat(request: AnthropicCountTokensRequest): ChatRequest {
  const messages: ChatMessage[] = [];
  const system =
    typeof request.system === "string" ? request.system : blocksText(request.system ?? []);
  if (system !== "") messages.push({ role: "system", content: system });
  for (const message of request.messages) {
    if (message.role === "system") {
      const text =
        typeof message.content === "string" ? message.content : blocksText(message.content);
      messages.push({ role: "system", content: text });
    } else if (typeof message.content === "string") {
      messages.push({ role: message.role, content: message.content });
    } else if (message.role === "assistant") {
      messages.push(assistantMessage(message.content));
    } else {
      messages.push(...userMessages(message.content));
    }
  }
  const tools = toolDefinitions(request.tools);
  const choice = toolChoice(request.tool_choice);
  return {
    model: request.model,
    messages,
    ...(tools.length > 0 ? { tools } : {}),
    ...(choice !== undefined ? { tool_choice: choice } : {}),
    stream: request.stream === true,
    ...(request.max_tokens !== undefined ? { max_tokens: request.max_tokens } : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
  };
}

/** What POST /v1/messages/count_tokens answers: the same figure a reply's usage.input_tokens shows. */
export function anthropicCountTokens(request: AnthropicCountTokensRequest): {
  input_tokens: number;
} {
  return { input_tokens: countTokens(promptText(anthropicToChat(request))) };
}
