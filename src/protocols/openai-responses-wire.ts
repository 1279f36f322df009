import { bearerKey } from "./api-keys.ts";
import { openAIErrorBody } from "./errors.ts";
import { parseResponsesRequest, responsesToChat } from "./openai-responses.ts";
import { safeJson } from "./safe-json.ts";
import type { SSEEvent } from "./sse.ts";
import { countTokens, promptText } from "./tokens.ts";
import type { MeteredUsage, StreamMeter, WireProtocol } from "./wire.ts";

/** Responses usage; input_tokens already includes the cached ones, as MeteredUsage expects. */
function responsesMetered(raw: unknown): MeteredUsage | undefined {
  if (!raw || typeof raw !== "object") return undefined;
  const usage = raw as {
    input_tokens?: unknown;
    output_tokens?: unknown;
    input_tokens_details?: { cached_tokens?: unknown } | null;
  };
  if (typeof usage.input_tokens !== "number" || typeof usage.output_tokens !== "number") {
    return undefined;
  }
  const cached = usage.input_tokens_details?.cached_tokens;
  return {
    inputTokens: usage.input_tokens,
    outputTokens: usage.output_tokens,
    cachedInputTokens: typeof cached === "number" ? cached : 0,
  };
}

// The terminal events carry the whole response with its usage; a failed response may too.
const USAGE_EVENTS = new Set(["response.completed", "response.incomplete", "response.failed"]);

/** OpenAI Responses, as the gateway meters it. */
export const openAIResponsesWire: WireProtocol = {
  name: "openai-responses",
  path: "/v1/responses",

  inspectRequest(body) {
    const request = parseResponsesRequest(body);
    return {
      model: request.model,
      stream: request.stream === true,
      estimatedInputTokens: countTokens(promptText(responsesToChat(request))),
      maxOutputTokens: request.max_output_tokens ?? undefined,
    };
  },

  // Usage always arrives in the final event: nothing to ask for.
  upstreamBody: (body) => body,

  usageFromResponse: (body) => responsesMetered((body as { usage?: unknown } | null)?.usage),

  createStreamMeter(): StreamMeter {
    let usage: MeteredUsage | undefined;
    return {
      onEvent(event: SSEEvent) {
        if (!event.data.includes('"usage"')) return;
        const data = safeJson(event.data) as { type?: unknown; response?: { usage?: unknown } };
        if (typeof data?.type === "string" && USAGE_EVENTS.has(data.type)) {
          usage = responsesMetered(data.response?.usage) ?? usage;
        }
      },
      usage: () => usage,
    };
  },

  apiKeyOf: bearerKey,

  errorBody: (status, message, code) => openAIErrorBody(status, message, undefined, code ?? null),
};
