import {
  geminiCallOf,
  geminiErrorBody,
  geminiKey,
  geminiToChat,
  parseGeminiRequest,
  requireGeminiCall,
} from "./gemini.ts";
import { safeJson } from "./safe-json.ts";
import type { SSEEvent } from "./sse.ts";
import { countTokens, promptText } from "./tokens.ts";
import type { MeteredUsage, StreamMeter, WireProtocol } from "./wire.ts";

const num = (value: unknown): number | undefined => (typeof value === "number" ? value : undefined);

/**
 * Gemini's promptTokenCount includes the cached tokens (also in cachedContentTokenCount), as
 * MeteredUsage expects; thinking tokens are billed as output, so they count as output here.
 */
function geminiMetered(raw: unknown): MeteredUsage | undefined {
  if (!raw || typeof raw !== "object") return undefined;
  const usage = raw as Record<string, unknown>;
  const input = num(usage.promptTokenCount);
  if (input === undefined) return undefined;
  return {
    inputTokens: input,
    outputTokens: (num(usage.candidatesTokenCount) ?? 0) + (num(usage.thoughtsTokenCount) ?? 0),
    cachedInputTokens: num(usage.cachedContentTokenCount) ?? 0,
  };
}

/**
 * Google's Gemini API (generateContent / streamGenerateContent?alt=sse), as the gateway meters it.
 * Every chunk of a stream may carry usageMetadata, cumulative: the last one seen is the total.
 */
export const geminiWire: WireProtocol = {
  name: "gemini",
  path: "/v1beta/models/{model}:generateContent",
  route: "/v1beta/models/*",
  servesPath: (path) => geminiCallOf(path) !== undefined,

  inspectRequest(body, path) {
    const call = requireGeminiCall(path);
    const request = parseGeminiRequest(body);
    return {
      model: call.model,
      stream: call.stream,
      estimatedInputTokens: countTokens(promptText(geminiToChat(request, call))),
      maxOutputTokens: request.generationConfig?.maxOutputTokens ?? undefined,
    };
  },

  // Usage comes with every reply: nothing to ask for.
  upstreamBody: (body) => body,

  upstreamPath(url) {
    // The client's scoped key must not travel on; the gateway sends the provider's key instead.
    const query = new URLSearchParams(url.search);
    query.delete("key");
    const rest = query.toString();
    return rest ? `${url.pathname}?${rest}` : url.pathname;
  },

  usageFromResponse: (body) =>
    geminiMetered((body as { usageMetadata?: unknown } | null)?.usageMetadata),

  createStreamMeter(): StreamMeter {
    let usage: MeteredUsage | undefined;
    return {
      onEvent(event: SSEEvent) {
        if (!event.data.includes('"usageMetadata"')) return;
        const data = safeJson(event.data) as { usageMetadata?: unknown } | undefined;
        usage = geminiMetered(data?.usageMetadata) ?? usage;
      },
      usage: () => usage,
    };
  },

  apiKeyOf: geminiKey,

  errorBody: (status, message) => geminiErrorBody(status, message),
};
