import type { SSEEvent } from "./sse.ts";

/**
 * Request headers as the protocols read them: a fetch Headers, or the gateway's view of a Node
 * request's headers (which spares it building a Headers per request).
 */
export type HeaderReader = Pick<Headers, "get">;

/** Token usage as the gateway meters it, whatever the protocol calls the fields. */
export interface MeteredUsage {
  inputTokens: number;
  outputTokens: number;
  /** Input tokens served from the provider's prompt cache (billed differently by some). */
  cachedInputTokens: number;
}

/** What the gateway must know about a request before forwarding it. */
export interface RequestFacts {
  model: string;
  stream: boolean;
  /** A deterministic estimate from the request's text, used to reserve budget before forwarding. */
  estimatedInputTokens: number;
  /** The most output the request allows (its max tokens field), if it says. */
  maxOutputTokens: number | undefined;
}

/** Reads usage out of a streamed reply, one SSE event at a time. */
export interface StreamMeter {
  onEvent(event: SSEEvent): void;
  /** The usage seen so far; undefined while the stream has reported none. */
  usage(): MeteredUsage | undefined;
}

/**
 * One wire protocol, as the gateway sees it: where it is served, how to read a request's facts and
 * a reply's usage, how to authenticate, and what an error looks like to that protocol's clients.
 * The simulator serves the same protocols with the same parsing and encoding code.
 */
export interface WireProtocol {
  readonly name: "openai-chat" | "anthropic-messages" | "openai-responses" | "gemini";
  /** The request path, e.g. "/v1/chat/completions" (for Gemini a template naming the model). */
  readonly path: string;
  /**
   * The Hono route pattern, when requests do not all go to one fixed `path`: Gemini puts the model
   * and the action in the path ("/v1beta/models/*"). Default: `path`.
   */
  readonly route?: string;
  /** Whether a request path (no query string) is this protocol's; default: it equals `path`. */
  servesPath?(path: string): boolean;
  /**
   * Throws ProtocolError (code "invalid_request", naming the field) for a body it cannot serve.
   * `path` is the request's path, which for Gemini carries the model and whether to stream.
   */
  inspectRequest(body: unknown, path?: string): RequestFacts;
  /** The body to send upstream: e.g. asks a streamed OpenAI reply to include usage. */
  upstreamBody(body: Record<string, unknown>): Record<string, unknown>;
  /** The path and query to send upstream; default as received. Gemini drops the client's `?key=`. */
  upstreamPath?(url: URL): string;
  usageFromResponse(body: unknown): MeteredUsage | undefined;
  createStreamMeter(): StreamMeter;
  /** The client's key, from the header (or, for Gemini, the URL) this protocol's clients send it in. */
  apiKeyOf(headers: HeaderReader, url?: URL): string | undefined;
  /** A provider-style error body this protocol's clients understand. */
  errorBody(status: number, message: string, code?: string): unknown;
}
