import type { ChatRequest } from "../openai-chat.ts";
import type { SSEEvent } from "../sse.ts";
import type { WireProtocol } from "../wire.ts";

export type ProtocolName = WireProtocol["name"];

export interface TranslateOptions {
  /** The model name the upstream wants (the provider's own name; may differ from what the client asked). */
  upstreamModel: string;
  /** The model the client asked for: replies report this name back to the client. */
  clientModel: string;
  /**
   * For a Chat Completions upstream: which field carries the output limit ("max_tokens" for most
   * OpenAI-compatible servers, "max_completion_tokens" for OpenAI itself). Default "max_tokens".
   */
  chatMaxTokensField?: "max_tokens" | "max_completion_tokens";
}

export interface TranslationStream {
  /** One upstream SSE event in, the client's SSE text to send now out (possibly ""). */
  push(event: SSEEvent): string;
  /** The upstream stream ended (normally or not): whatever closes the client's stream properly. */
  end(): string;
}

export interface Translation {
  /**
   * The upstream request for a client request. `clientPath` is the path the client used (for Gemini
   * it carries the model and whether to stream). Throws ProtocolError naming the field for a request
   * it cannot translate.
   */
  request(
    body: unknown,
    clientPath: string,
  ): { body: Record<string, unknown>; path: string; stream: boolean };
  /** A non-streamed upstream JSON reply (parsed) -> the client protocol's JSON reply. */
  response(upstreamBody: unknown): unknown;
  /** A stateful converter for one streamed reply. */
  createStream(): TranslationStream;
  /** An upstream error reply (status + raw body text) -> an error body in the client's protocol. */
  error(status: number, upstreamText: string): unknown;
}

/**
 * Usage as the upstream reported it, in one shape: input includes cached tokens (as OpenAI's
 * prompt_tokens does) and output includes reasoning tokens, so each client form can be derived
 * without changing the totals.
 */
export interface NeutralUsage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  /** Anthropic's cache_creation_input_tokens; part of inputTokens. */
  cacheWriteTokens: number;
  /** Thinking tokens; part of outputTokens. */
  reasoningTokens: number;
}

export type NeutralFinish = "stop" | "length" | "tool_calls" | "content_filter";

/** An upstream failure reported inside a stream (Anthropic's `error` event, an OpenAI error chunk). */
export interface NeutralError {
  status: number;
  message: string;
  /** The provider's error type or code, when it gave one (e.g. "overloaded_error"). */
  type?: string;
}

/**
 * The small stream every upstream reply is decoded into and every client reply encoded from. Tool
 * calls are numbered 0, 1, ... in the order they start.
 */
export type NeutralDelta =
  | { type: "text"; text: string }
  | { type: "tool_start"; index: number; id: string; name: string }
  | { type: "tool_args"; index: number; args: string }
  | { type: "finish"; reason: NeutralFinish }
  /** Cumulative: the latest replaces earlier ones. */
  | { type: "usage"; usage: NeutralUsage }
  | { type: "error"; error: NeutralError }
  /** The upstream said the reply is complete (Chat's [DONE], Anthropic's message_stop). */
  | { type: "done" };

/** A whole (non-streamed) upstream reply in neutral terms. */
export interface NeutralReply {
  content: string | null;
  toolCalls: { id: string; name: string; arguments: string }[];
  finish: NeutralFinish;
  usage: NeutralUsage;
}

/** Decodes one upstream stream; stateful (tool call numbering, cumulative usage). */
export interface StreamDecoder {
  push(event: SSEEvent): NeutralDelta[];
}

/** Encodes neutral deltas as the client's SSE text; `close` is idempotent. */
export interface StreamEncoder {
  push(delta: NeutralDelta): string;
  close(): string;
}

/**
 * A client request in neutral terms: the Chat Completions shaped form the existing converters
 * produce, plus the few settings that form does not hold.
 */
export interface NeutralRequest {
  chat: ChatRequest;
  stream: boolean;
  /** Chat clients only: whether they asked for a usage chunk (stream_options.include_usage). */
  includeUsage: boolean;
  stop?: string[];
  topP?: number;
  /** false when the client asked for at most one tool call per reply. */
  parallelToolCalls?: boolean;
}
