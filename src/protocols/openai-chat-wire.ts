import { bearerKey } from "./api-keys.ts";
import { openAIErrorBody } from "./errors.ts";
import { parseChatRequest } from "./openai-chat.ts";
import { safeJson } from "./safe-json.ts";
import type { SSEEvent } from "./sse.ts";
import { countTokens, promptText } from "./tokens.ts";
import type { MeteredUsage, StreamMeter, WireProtocol } from "./wire.ts";

/** OpenAI Chat Completions, as the gateway meters it. */
export const openAIChatWire: WireProtocol = {
  name: "openai-chat",
  path: "/v1/chat/completions",

  inspectRequest(body) {
    const request = parseChatRequest(body);
    return {
      model: request.model,
      stream: request.stream === true,
      estimatedInputTokens: countTokens(promptText(request)),
      maxOutputTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined,
    };
  },

  upstreamBody(body) {
    if (body.stream !== true) return body;
    // Without this a streamed reply carries no usage, and the gateway could not meter it.
    const options = (body.stream_options ?? {}) as Record<string, unknown>;
    // Already asked for (the SDKs' usual request): the body goes on as the client wrote it.
    if (options.include_usage === true) return body;
    return { ...body, stream_options: { ...options, include_usage: true } };
  },

  usageFromResponse: (body) => chatUsage((body as { usage?: unknown } | null)?.usage),

  createStreamMeter(): StreamMeter {
    let usage: MeteredUsage | undefined;
    return {
      onEvent(event: SSEEvent) {
        if (event.data === "[DONE]" || !event.data.includes('"usage"')) return;
        const parsed = safeJson(event.data) as { usage?: unknown } | undefined;
        usage = chatUsage(parsed?.usage) ?? usage;
      },
      usage: () => usage,
    };
  },

  apiKeyOf: bearerKey,

  errorBody: (status, message, code) => openAIErrorBody(status, message, undefined, code ?? null),
};

function chatUsage(raw: unknown): MeteredUsage | undefined {
  if (!raw || typeof raw !== "object") return undefined;
  const usage = raw as {
    prompt_tokens?: unknown;
    completion_tokens?: unknown;
    prompt_tokens_details?: { cached_tokens?: unknown } | null;
  };
  if (typeof usage.prompt_tokens !== "number" || typeof usage.completion_tokens !== "number") {
    return undefined;
  }
  const cached = usage.prompt_tokens_details?.cached_tokens;
  return {
    inputTokens: usage.prompt_tokens,
    outputTokens: usage.completion_tokens,
    cachedInputTokens: typeof cached === "number" ? cached : 0,
  };
}
