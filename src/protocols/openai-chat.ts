import { z } from "zod";
import { splitArguments, splitIntoPieces } from "./pieces.ts";
import { parseOrThrow } from "./zod-issues.ts";

// Loose objects keep unknown fields (logprobs, metadata, user, ...) so a proxy can forward them untouched,
// while the fields nightshift relies on are checked strictly.
const contentPart = z
  .looseObject({ type: z.string().min(1), text: z.unknown().optional() })
  .superRefine((part, ctx) => {
    if (part.type === "text" && typeof part.text !== "string") {
      ctx.addIssue({ code: "custom", path: ["text"], message: "text parts need a string `text`" });
    }
  });
const content = z.union([z.string(), z.array(contentPart)], {
  error: "must be a string or an array of content parts",
});
const toolCallSchema = z.looseObject({
  id: z.string().min(1),
  type: z.literal("function"),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});

const systemMessage = z.looseObject({ role: z.literal("system"), content });
const developerMessage = z.looseObject({ role: z.literal("developer"), content });
const userMessage = z.looseObject({ role: z.literal("user"), content });
const assistantMessage = z.looseObject({
  role: z.literal("assistant"),
  content: content.nullish(),
  tool_calls: z.array(toolCallSchema).nullish(),
});
const toolMessage = z.looseObject({
  role: z.literal("tool"),
  content,
  tool_call_id: z.string().min(1),
});

const messageSchema = z.discriminatedUnion("role", [
  systemMessage,
  developerMessage,
  userMessage,
  assistantMessage,
  toolMessage,
]);

const toolSchema = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({
    name: z.string().min(1),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
});

const toolChoiceSchema = z.union(
  [
    z.enum(["none", "auto", "required"]),
    z.looseObject({ type: z.literal("function"), function: z.object({ name: z.string().min(1) }) }),
  ],
  { error: 'must be "none", "auto", "required" or {type:"function",function:{name}}' },
);

export const chatRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(messageSchema).min(1),
  tools: z.array(toolSchema).optional(),
  tool_choice: toolChoiceSchema.optional(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type ChatMessage = z.infer<typeof messageSchema>;
export type ChatContent = z.infer<typeof content>;
export type ChatToolDefinition = z.infer<typeof toolSchema>;

/** A tool call as it travels on the wire: arguments are a JSON string the model wrote (possibly malformed). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter";

/** Validates a Chat Completions request body; throws ProtocolError("invalid_request") naming the field. */
export function parseChatRequest(body: unknown): ChatRequest {
  return parseOrThrow(chatRequestSchema, body, "chat completion request");
}

/** The plain text of a message content, ignoring non-text parts (images, audio). */
export function contentText(value: ChatContent | null | undefined): string {
  if (value == null) return "";
  if (typeof value === "string") return value;
  return value
    .map((part) => (part.type === "text" && typeof part.text === "string" ? part.text : ""))
    .join("");
}

export interface ChatReplyInput {
  id: string;
  model: string;
  /** Unix seconds, as OpenAI reports it. */
  created: number;
  content: string | null;
  toolCalls?: ToolCall[];
  usage: Usage;
  finishReason?: FinishReason;
}

function defaultFinishReason(input: ChatReplyInput): FinishReason {
  if (input.finishReason) return input.finishReason;
  return input.toolCalls && input.toolCalls.length > 0 ? "tool_calls" : "stop";
}

function wireToolCall(call: ToolCall) {
  return {
    id: call.id,
    type: "function" as const,
    function: { name: call.name, arguments: call.arguments },
  };
}

export interface ChatCompletionResponse {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: {
    index: number;
    message: {
      role: "assistant";
      content: string | null;
      tool_calls?: ReturnType<typeof wireToolCall>[];
    };
    finish_reason: FinishReason;
    logprobs: null;
  }[];
  usage: Usage;
}

/** Non-streaming Chat Completions response body. */
export function chatCompletionResponse(input: ChatReplyInput): ChatCompletionResponse {
  const calls = input.toolCalls ?? [];
  return {
    id: input.id,
    object: "chat.completion",
    created: input.created,
    model: input.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: input.content,
          ...(calls.length > 0 ? { tool_calls: calls.map(wireToolCall) } : {}),
        },
        finish_reason: defaultFinishReason(input),
        logprobs: null,
      },
    ],
    usage: input.usage,
  };
}

export interface ChunkToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments: string };
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: "assistant"; content?: string; tool_calls?: ChunkToolCallDelta[] };
    finish_reason: FinishReason | null;
    logprobs?: null;
  }[];
  usage?: Usage | null;
}

/** The SSE payloads of a stream: chunk objects, then the literal terminator. */
export type ChatStreamItem = ChatCompletionChunk | "[DONE]";

export interface ChatChunksInput extends ChatReplyInput {
  includeUsage?: boolean;
  /** Upper bound on content deltas; real streams send many small ones. */
  maxContentPieces?: number;
}

function toolCallDeltas(calls: ToolCall[]): ChunkToolCallDelta[] {
  const deltas: ChunkToolCallDelta[] = [];
  calls.forEach((call, index) => {
    deltas.push({
      index,
      id: call.id,
      type: "function",
      function: { name: call.name, arguments: "" },
    });
    for (const piece of splitArguments(call.arguments, 3)) {
      deltas.push({ index, function: { arguments: piece } });
    }
  });
  return deltas;
}

/** The chunk sequence OpenAI streams for one reply, ending with usage (if asked) and "[DONE]". */
export function chatCompletionChunks(input: ChatChunksInput): ChatStreamItem[] {
  const chunk = (
    delta: ChatCompletionChunk["choices"][number]["delta"],
    finish: FinishReason | null = null,
  ): ChatCompletionChunk => ({
    id: input.id,
    object: "chat.completion.chunk",
    created: input.created,
    model: input.model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const items: ChatStreamItem[] = [chunk({ role: "assistant", content: "" })];
  for (const piece of splitIntoPieces(input.content ?? "", input.maxContentPieces ?? 8)) {
    items.push(chunk({ content: piece }));
  }
  for (const delta of toolCallDeltas(input.toolCalls ?? []))
    items.push(chunk({ tool_calls: [delta] }));
  items.push(chunk({}, defaultFinishReason(input)));
  if (input.includeUsage) items.push({ ...chunk({}), choices: [], usage: input.usage });
  items.push("[DONE]");
  return items;
}

export interface AssembledReply {
  id: string | null;
  model: string | null;
  content: string | null;
  toolCalls: ToolCall[];
  finishReason: FinishReason | null;
  usage: Usage | null;
}

/** Folds streamed chunks back into one reply, the way a client (or a metering proxy) would. */
export function assembleChunks(items: Iterable<ChatStreamItem>): AssembledReply {
  const out: AssembledReply = {
    id: null,
    model: null,
    content: null,
    toolCalls: [],
    finishReason: null,
    usage: null,
  };
  for (const item of items) {
    if (item === "[DONE]") break;
    out.id ??= item.id;
    out.model ??= item.model;
    if (item.usage) out.usage = item.usage;
    for (const choice of item.choices) applyDelta(out, choice);
  }
  return out;
}

function applyDelta(out: AssembledReply, choice: ChatCompletionChunk["choices"][number]): void {
  if (typeof choice.delta.content === "string" && choice.delta.content !== "") {
    out.content = (out.content ?? "") + choice.delta.content;
  }
  for (const delta of choice.delta.tool_calls ?? []) {
    const existing = out.toolCalls[delta.index];
    if (!existing) {
      out.toolCalls[delta.index] = {
        id: delta.id ?? "",
        name: delta.function.name ?? "",
        arguments: delta.function.arguments ?? "",
      };
    } else {
      existing.arguments += delta.function.arguments ?? "";
    }
  }
  if (choice.finish_reason) out.finishReason = choice.finish_reason;
}
