import type { FinishReason, ToolCall, Usage } from "./openai-chat.ts";
import { splitArguments, splitIntoPieces } from "./pieces.ts";

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface ResponsesMessageItem {
  id: string;
  type: "message";
  status: "in_progress" | "completed" | "incomplete";
  role: "assistant";
  content: { type: "output_text"; text: string; annotations: []; logprobs: [] }[];
}

export interface ResponsesFunctionCallItem {
  id: string;
  type: "function_call";
  status: "in_progress" | "completed";
  call_id: string;
  name: string;
  arguments: string;
}

export type ResponsesOutputItem = ResponsesMessageItem | ResponsesFunctionCallItem;

export type ResponseStatus = "in_progress" | "completed" | "incomplete";

export interface ResponseObject {
  id: string;
  object: "response";
  created_at: number;
  status: ResponseStatus;
  error: null;
  incomplete_details: { reason: "max_output_tokens" } | null;
  model: string;
  output: ResponsesOutputItem[];
  usage: ResponsesUsage | null;
  [field: string]: unknown;
}

/** One reply in neutral terms; the builders below render it as the Responses API sends it. */
export interface ResponsesReplyInput {
  /** e.g. "resp_..."; item ids are derived from it. */
  id: string;
  model: string;
  /** Unix seconds. */
  createdAt: number;
  content: string | null;
  /** `id` is the call_id the client answers with a function_call_output. */
  toolCalls?: ToolCall[];
  usage: Usage;
  finishReason?: FinishReason;
  maxContentPieces?: number;
}

export function responsesUsage(usage: Usage): ResponsesUsage {
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.prompt_tokens + usage.completion_tokens,
  };
}

function idSuffix(input: ResponsesReplyInput): string {
  return input.id.replace(/^resp_/, "");
}

function messageItem(input: ResponsesReplyInput, text: string, status: ResponseStatus) {
  return {
    id: `msg_${idSuffix(input)}`,
    type: "message" as const,
    status,
    role: "assistant" as const,
    content: text === "" && status === "in_progress" ? [] : [outputText(text)],
  };
}

function outputText(text: string) {
  return { type: "output_text" as const, text, annotations: [] as [], logprobs: [] as [] };
}

function callItem(
  input: ResponsesReplyInput,
  call: ToolCall,
  index: number,
  done: boolean,
): ResponsesFunctionCallItem {
  return {
    id: `fc_${idSuffix(input)}_${index}`,
    type: "function_call",
    status: done ? "completed" : "in_progress",
    call_id: call.id,
    name: call.name,
    arguments: done ? call.arguments : "",
  };
}

function finalStatus(input: ResponsesReplyInput): ResponseStatus {
  return input.finishReason === "length" ? "incomplete" : "completed";
}

function outputItems(input: ResponsesReplyInput): ResponsesOutputItem[] {
  const status = finalStatus(input);
  const items: ResponsesOutputItem[] = [];
  if (input.content) {
    const item = messageItem(input, input.content, status) as ResponsesMessageItem;
    items.push(item);
  }
  (input.toolCalls ?? []).forEach((call, i) => {
    items.push(callItem(input, call, i, true));
  });
  return items;
}

function responseObject(
  input: ResponsesReplyInput,
  status: ResponseStatus,
  output: ResponsesOutputItem[],
  usage: ResponsesUsage | null,
): ResponseObject {
  return {
    id: input.id,
    object: "response",
    created_at: input.createdAt,
    status,
    error: null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: null,
    max_output_tokens: null,
    model: input.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: 1,
    truncation: "disabled",
    usage,
    user: null,
    metadata: {},
  };
}

/** Non-streaming Responses body. */
export function responsesResponse(input: ResponsesReplyInput): ResponseObject {
  return responseObject(input, finalStatus(input), outputItems(input), responsesUsage(input.usage));
}

/** An SSE event as OpenAI sends it: `event:` repeats the payload's `type`; sequence numbers count up from 0. */
export interface ResponsesStreamEvent {
  event: string;
  data: { type: string; sequence_number: number } & Record<string, unknown>;
}

/**
 * The event sequence of a streamed reply: response.created, response.in_progress, then per output
 * item output_item.added, its deltas (content_part / output_text or function_call_arguments) and
 * output_item.done, and finally response.completed (or .incomplete) carrying the usage.
 */
export function responsesEvents(input: ResponsesReplyInput): ResponsesStreamEvent[] {
  const events: ResponsesStreamEvent[] = [];
  const push = (type: string, fields: Record<string, unknown>) => {
    events.push({ event: type, data: { type, sequence_number: events.length, ...fields } });
  };
  const status = finalStatus(input);
  push("response.created", { response: responseObject(input, "in_progress", [], null) });
  push("response.in_progress", { response: responseObject(input, "in_progress", [], null) });
  let outputIndex = 0;
  if (input.content) {
    const output_index = outputIndex++;
    const item_id = `msg_${idSuffix(input)}`;
    const at = { item_id, output_index, content_index: 0 };
    push("response.output_item.added", {
      output_index,
      item: messageItem(input, "", "in_progress"),
    });
    push("response.content_part.added", { ...at, part: outputText("") });
    for (const delta of splitIntoPieces(input.content, input.maxContentPieces ?? 8)) {
      push("response.output_text.delta", { ...at, delta, logprobs: [] });
    }
    push("response.output_text.done", { ...at, text: input.content, logprobs: [] });
    push("response.content_part.done", { ...at, part: outputText(input.content) });
    push("response.output_item.done", {
      output_index,
      item: messageItem(input, input.content, status),
    });
  }
  (input.toolCalls ?? []).forEach((call, i) => {
    const output_index = outputIndex++;
    const item_id = `fc_${idSuffix(input)}_${i}`;
    push("response.output_item.added", { output_index, item: callItem(input, call, i, false) });
    for (const delta of splitArguments(call.arguments, 3)) {
      push("response.function_call_arguments.delta", { item_id, output_index, delta });
    }
    push("response.function_call_arguments.done", {
      item_id,
      output_index,
      name: call.name,
      arguments: call.arguments,
    });
    push("response.output_item.done", { output_index, item: callItem(input, call, i, true) });
  });
  const final = responseObject(input, status, outputItems(input), responsesUsage(input.usage));
  push(status === "incomplete" ? "response.incomplete" : "response.completed", { response: final });
  return events;
}
