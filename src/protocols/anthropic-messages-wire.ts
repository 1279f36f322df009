import { anthropicToChat, parseAnthropicRequest } from "./anthropic-messages.ts";
import { anthropicKey } from "./api-keys.ts";
import { anthropicErrorBody } from "./errors.ts";
import { safeJson } from "./safe-json.ts";
import type { SSEEvent } from "./sse.ts";
import { countTokens, promptText } from "./tokens.ts";
import type { MeteredUsage, StreamMeter, WireProtocol } from "./wire.ts";

interface RawAnthropicUsage {
  input_tokens?: unknown;
  output_tokens?: unknown;
  cache_creation_input_tokens?: unknown;
  cache_read_input_tokens?: unknown;
}

const num = (value: unknown): number | undefined => (typeof value === "number" ? value : undefined);

/**
 * Anthropic's input_tokens excludes cache reads and writes; MeteredUsage.inputTokens includes them
 * (as OpenAI's prompt_tokens does), with the cache reads also in cachedInputTokens.
 */
function metered(raw: RawAnthropicUsage): MeteredUsage | undefined {
  const input = num(raw.input_tokens);
  const output = num(raw.output_tokens);
  if (input === undefined || output === undefined) return undefined;
  const cacheRead = num(raw.cache_read_input_tokens) ?? 0;
  const cacheWrite = num(raw.cache_creation_input_tokens) ?? 0;
  return {
    inputTokens: input + cacheRead + cacheWrite,
    outputTokens: output,
    cachedInputTokens: cacheRead,
  };
}

/**
 * Input figures come from message_start and the final output count from message_delta (cumulative,
 * so it replaces rather than adds); a message_delta that repeats input figures overrides them.
 */
function createAnthropicStreamMeter(): StreamMeter {
  let raw: RawAnthropicUsage | undefined;
  return {
    onEvent(event: SSEEvent) {
      if (!event.data.includes('"usage"')) return;
      const data = safeJson(event.data) as
        | { type?: unknown; message?: { usage?: RawAnthropicUsage }; usage?: RawAnthropicUsage }
        | undefined;
      if (data?.type === "message_start" && data.message?.usage) {
        raw = { ...data.message.usage };
      } else if (data?.type === "message_delta" && data.usage && raw) {
        for (const [key, value] of Object.entries(data.usage)) {
          if (value != null) (raw as Record<string, unknown>)[key] = value;
        }
      }
    },
    usage: () => (raw ? metered(raw) : undefined),
  };
}

/** Anthropic Messages, as the gateway meters it. */
export const anthropicMessagesWire: WireProtocol = {
  name: "anthropic-messages",
  path: "/v1/messages",

  inspectRequest(body) {
    const request = parseAnthropicRequest(body);
    return {
      model: request.model,
      stream: request.stream === true,
      estimatedInputTokens: countTokens(promptText(anthropicToChat(request))),
      maxOutputTokens: request.max_tokens,
    };
  },

  // Every Anthropic reply carries usage, streamed or not: nothing to ask for.
  upstreamBody: (body) => body,

  usageFromResponse(body) {
    const usage = (body as { usage?: unknown } | null)?.usage;
    return usage && typeof usage === "object" ? metered(usage as RawAnthropicUsage) : undefined;
  },

  createStreamMeter: createAnthropicStreamMeter,

  apiKeyOf: anthropicKey,

  // Anthropic's error body has no code field; the message carries the reason.
  errorBody: (status, message) => anthropicErrorBody(status, message),
};
