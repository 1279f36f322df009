import type { FinishReason, ToolCall, Usage } from "./openai-chat.ts";
import { splitArguments, splitIntoPieces } from "./pieces.ts";
import { safeJson } from "./safe-json.ts";
import type { SSEEvent } from "./sse.ts";

export type AnthropicStopReason = "end_turn" | "tool_use" | "max_tokens" | "refusal";

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export type AnthropicReplyBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown };

export interface AnthropicMessageResponse {
  id: string;
  type: "message";
  role: "assistant";
  model: string;
  content: AnthropicReplyBlock[];
  stop_reason: AnthropicStopReason;
  stop_sequence: null;
  usage: AnthropicUsage;
}

/** One reply in neutral terms; the builders below render it as Anthropic sends it. */
export interface AnthropicReplyInput {
  /** e.g. "msg_01..." */
  id: string;
  model: string;
  content: string | null;
  /** Ids should look like Anthropic's ("toolu_..."); arguments are the JSON the model wrote. */
  toolCalls?: ToolCall[];
  usage: Usage;
  finishReason?: FinishReason;
  /** Upper bound on text deltas in a stream. */
  maxContentPieces?: number;
}

export function anthropicStopReason(input: AnthropicReplyInput): AnthropicStopReason {
  if (input.finishReason === "length") return "max_tokens";
  if (input.finishReason === "content_filter") return "refusal";
  if (input.finishReason === "tool_calls") return "tool_use";
  if (input.finishReason === "stop") return "end_turn";
  return (input.toolCalls ?? []).length > 0 ? "tool_use" : "end_turn";
}

/** Anthropic's usage from neutral counts; nothing is cached in a reply built here. */
export function anthropicUsage(usage: Usage): AnthropicUsage {
  return {
    input_tokens: usage.prompt_tokens,
    output_tokens: usage.completion_tokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
  };
}

/**
 * The tool input as an object. Arguments that are not a JSON object (a policy's deliberately
 * malformed output) are passed on as the raw string: the real API never does that, but repairing
 * them silently would hide exactly what the test meant to show the client.
 */
function toolInput(args: string): unknown {
  const parsed = safeJson(args);
  return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : args;
}

function replyBlocks(input: AnthropicReplyInput): AnthropicReplyBlock[] {
  const blocks: AnthropicReplyBlock[] = [];
  if (input.content) blocks.push({ type: "text", text: input.content });
  for (const call of input.toolCalls ?? []) {
    blocks.push({
      type: "tool_use",
      id: call.id,
      name: call.name,
      input: toolInput(call.arguments),
    });
  }
  return blocks;
}

/** Non-streaming Messages response body. */
export function anthropicMessageResponse(input: AnthropicReplyInput): AnthropicMessageResponse {
  return {
    id: input.id,
    type: "message",
    role: "assistant",
    model: input.model,
    content: replyBlocks(input),
    stop_reason: anthropicStopReason(input),
    stop_sequence: null,
    usage: anthropicUsage(input.usage),
  };
}

/** An SSE event as Anthropic sends it: the `event:` name repeats the payload's `type`. */
export interface AnthropicStreamEvent {
  event: string;
  data: { type: string } & Record<string, unknown>;
}

function ev(type: string, fields: Record<string, unknown> = {}): AnthropicStreamEvent {
  return { event: type, data: { type, ...fields } };
}

function textBlockEvents(index: number, text: string, maxPieces: number): AnthropicStreamEvent[] {
  return [
    ev("content_block_start", { index, content_block: { type: "text", text: "" } }),
    ...splitIntoPieces(text, maxPieces).map((piece) =>
      ev("content_block_delta", { index, delta: { type: "text_delta", text: piece } }),
    ),
    ev("content_block_stop", { index }),
  ];
}

// The block starts with empty input and the JSON arrives in pieces, first an empty one, as the API does.
function toolUseEvents(index: number, call: ToolCall): AnthropicStreamEvent[] {
  const pieces = ["", ...splitArguments(call.arguments, 3)];
  return [
    ev("content_block_start", {
      index,
      content_block: { type: "tool_use", id: call.id, name: call.name, input: {} },
    }),
    ...pieces.map((piece) =>
      ev("content_block_delta", {
        index,
        delta: { type: "input_json_delta", partial_json: piece },
      }),
    ),
    ev("content_block_stop", { index }),
  ];
}

/**
 * The event sequence of a streamed reply: message_start (input usage), ping, one start/delta/stop
 * group per content block, message_delta (stop reason, cumulative output tokens), message_stop.
 */
export function anthropicMessageEvents(input: AnthropicReplyInput): AnthropicStreamEvent[] {
  const usage = anthropicUsage(input.usage);
  const events: AnthropicStreamEvent[] = [
    ev("message_start", {
      message: {
        id: input.id,
        type: "message",
        role: "assistant",
        model: input.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        // Anthropic reports a token or so here and the real total in message_delta.
        usage: { ...usage, output_tokens: Math.min(1, usage.output_tokens) },
      },
    }),
    ev("ping"),
  ];
  let index = 0;
  if (input.content) {
    events.push(...textBlockEvents(index++, input.content, input.maxContentPieces ?? 8));
  }
  for (const call of input.toolCalls ?? []) events.push(...toolUseEvents(index++, call));
  events.push(
    ev("message_delta", {
      delta: { stop_reason: anthropicStopReason(input), stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    }),
    ev("message_stop"),
  );
  return events;
}

export interface AssembledAnthropicReply {
  id: string | null;
  model: string | null;
  content: string | null;
  /** Arguments are the concatenated input_json_delta pieces, exactly as streamed. */
  toolCalls: ToolCall[];
  stopReason: string | null;
  usage: AnthropicUsage | null;
}

type Payload = Record<string, unknown> & { type?: unknown };

/** Folds a Messages event stream back into one reply, the way a client would; skips unreadable events. */
export function assembleAnthropicEvents(events: Iterable<SSEEvent>): AssembledAnthropicReply {
  const out: AssembledAnthropicReply = {
    id: null,
    model: null,
    content: null,
    toolCalls: [],
    stopReason: null,
    usage: null,
  };
  const toolByIndex = new Map<number, ToolCall>();
  for (const event of events) {
    const data = safeJson(event.data) as Payload | undefined;
    if (data && typeof data === "object") applyEvent(out, toolByIndex, data);
  }
  return out;
}

function applyEvent(out: AssembledAnthropicReply, tools: Map<number, ToolCall>, data: Payload) {
  const index = typeof data.index === "number" ? data.index : -1;
  if (data.type === "message_start") {
    const message = data.message as { id?: string; model?: string; usage?: AnthropicUsage };
    out.id = message?.id ?? null;
    out.model = message?.model ?? null;
    out.usage = message?.usage ? { ...message.usage } : null;
  } else if (data.type === "content_block_start") {
    const block = data.content_block as { type?: string; id?: string; name?: string };
    if (block?.type === "tool_use") {
      const call = { id: block.id ?? "", name: block.name ?? "", arguments: "" };
      tools.set(index, call);
      out.toolCalls.push(call);
    }
  } else if (data.type === "content_block_delta") {
    const delta = data.delta as { type?: string; text?: string; partial_json?: string };
    if (delta?.type === "text_delta") out.content = (out.content ?? "") + (delta.text ?? "");
    const call = tools.get(index);
    if (delta?.type === "input_json_delta" && call) call.arguments += delta.partial_json ?? "";
  } else if (data.type === "message_delta") {
    const delta = data.delta as { stop_reason?: string };
    out.stopReason = delta?.stop_reason ?? out.stopReason;
    const usage = data.usage as Partial<AnthropicUsage> | undefined;
    if (out.usage && usage) out.usage = { ...out.usage, ...usage };
  }
}
