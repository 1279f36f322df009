import { z } from "zod";
import type { ChatMessage, ChatRequest, ChatToolDefinition } from "./openai-chat.ts";
import { parseOrThrow, refineByType } from "./zod-issues.ts";

const textPartTypes = new Set(["input_text", "output_text", "text"]);
const contentPart = z
  .looseObject({ type: z.string().min(1), text: z.unknown().optional() })
  .superRefine((part, ctx) => {
    if (textPartTypes.has(part.type) && typeof part.text !== "string") {
      ctx.addIssue({
        code: "custom",
        path: ["text"],
        message: `${part.type} parts need a string \`text\``,
      });
    }
  });
const content = z.union([z.string(), z.array(contentPart)], {
  error: "must be a string or an array of content parts",
});

// Field checks for the item types nightshift reads; others (reasoning, item_reference, built-in tool
// calls) pass untouched so that real clients such as Codex are never refused: see refineByType.
const itemSchemas = {
  message: z.looseObject({
    type: z.literal("message").optional(),
    role: z.enum(["user", "assistant", "system", "developer"]),
    content,
  }),
  function_call: z.looseObject({
    type: z.literal("function_call"),
    call_id: z.string().min(1),
    name: z.string().min(1),
    arguments: z.string(),
  }),
  function_call_output: z.looseObject({
    type: z.literal("function_call_output"),
    call_id: z.string().min(1),
    output: content,
  }),
};
// An item without `type` is an "easy input message" ({role, content}).
const inputItem = z
  .looseObject({ type: z.string().min(1).optional() })
  .superRefine((item, ctx) => refineByType(itemSchemas, item, ctx, "message"));

const toolSchema = z
  .looseObject({
    type: z.string().min(1),
    name: z.string().optional(),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
  })
  .superRefine((tool, ctx) => {
    if (tool.type === "function" && !tool.name) {
      ctx.addIssue({ code: "custom", path: ["name"], message: "function tools need a name" });
    }
  });

const toolChoiceSchema = z.union(
  [
    z.enum(["none", "auto", "required"]),
    z.looseObject({ type: z.string().min(1), name: z.string().optional() }),
  ],
  { error: 'must be "none", "auto", "required" or {type:"function",name}' },
);

// Loose: clients send store, include, reasoning, text, truncation, ... which a proxy forwards as is.
export const responsesRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z
    .union([z.string(), z.array(inputItem)], {
      error: "must be a string or an array of input items",
    })
    .optional(),
  instructions: z.string().nullish(),
  tools: z.array(toolSchema).optional(),
  tool_choice: toolChoiceSchema.optional(),
  stream: z.boolean().nullish(),
  max_output_tokens: z.number().int().positive().nullish(),
  previous_response_id: z.string().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
});

export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;

/** Validates a Responses request body; throws ProtocolError("invalid_request") naming the field. */
export function parseResponsesRequest(body: unknown): ResponsesRequest {
  return parseOrThrow(responsesRequestSchema, body, "responses request");
}

type Part = { type: string; text?: unknown };
type MessageItem = {
  role: "user" | "assistant" | "system" | "developer";
  content: string | Part[];
};
type FunctionCallItem = { call_id: string; name: string; arguments: string };
type FunctionOutputItem = { call_id: string; output: string | Part[] };

function partsText(value: string | Part[]): string {
  if (typeof value === "string") return value;
  return value
    .map((part) => (textPartTypes.has(part.type) && typeof part.text === "string" ? part.text : ""))
    .join("");
}

// A reply's output items (message, then function calls) become ONE assistant message, so that the
// turn count of the neutral form equals the number of model replies in the conversation.
function appendFunctionCall(messages: ChatMessage[], item: FunctionCallItem): void {
  const call = {
    id: item.call_id,
    type: "function" as const,
    function: { name: item.name, arguments: item.arguments },
  };
  const last = messages.at(-1);
  if (last?.role === "assistant") {
    last.tool_calls = [...(last.tool_calls ?? []), call];
  } else {
    messages.push({ role: "assistant", content: null, tool_calls: [call] });
  }
}

function appendItem(messages: ChatMessage[], item: { type?: string }): void {
  const type = item.type ?? "message";
  if (type === "message") {
    const message = item as MessageItem;
    const text = partsText(message.content);
    if (message.role === "assistant") messages.push({ role: "assistant", content: text });
    else messages.push({ role: message.role, content: text });
  } else if (type === "function_call") {
    appendFunctionCall(messages, item as FunctionCallItem);
  } else if (type === "function_call_output") {
    const output = item as FunctionOutputItem;
    messages.push({
      role: "tool",
      tool_call_id: output.call_id,
      content: partsText(output.output),
    });
  }
}

function toolDefinitions(tools: ResponsesRequest["tools"]): ChatToolDefinition[] {
  return (tools ?? [])
    .filter((tool) => tool.type === "function" && tool.name)
    .map((tool) => ({
      type: "function",
      function: {
        name: tool.name ?? "",
        ...(tool.description ? { description: tool.description } : {}),
        ...(tool.parameters ? { parameters: tool.parameters } : {}),
      },
    }));
}

function toolChoice(choice: ResponsesRequest["tool_choice"]): ChatRequest["tool_choice"] {
  if (choice === undefined || typeof choice === "string") return choice;
  return choice.type === "function" && choice.name
    ? { type: "function", function: { name: choice.name } }
    : undefined;
}

/**
 * The neutral (Chat Completions shaped) form: instructions become a system message, message items
 * messages, function_call items assistant tool_calls, function_call_output items tool messages.
 * Items of other types (reasoning, ...) carry nothing a policy reads and are dropped.
 */
export function responsesToChat(request: ResponsesRequest): ChatRequest {
  const messages: ChatMessage[] = [];
  if (request.instructions) messages.push({ role: "system", content: request.instructions });
  if (typeof request.input === "string") messages.push({ role: "user", content: request.input });
  else for (const item of request.input ?? []) appendItem(messages, item);
  const tools = toolDefinitions(request.tools);
  const choice = toolChoice(request.tool_choice);
  return {
    model: request.model,
    messages,
    ...(tools.length > 0 ? { tools } : {}),
    ...(choice !== undefined ? { tool_choice: choice } : {}),
    stream: request.stream === true,
    ...(request.max_output_tokens ? { max_completion_tokens: request.max_output_tokens } : {}),
    ...(request.temperature != null ? { temperature: request.temperature } : {}),
  };
}
