import type { NeutralUsage } from "./types.ts";

const num = (value: unknown): number => (typeof value === "number" ? value : 0);
const record = (value: unknown): Record<string, unknown> =>
  value && typeof value === "object" ? (value as Record<string, unknown>) : {};

export const noUsage: NeutralUsage = {
  inputTokens: 0,
  outputTokens: 0,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
};

// --- upstream forms -> neutral ---------------------------------------------------------------

export function usageFromChat(raw: unknown): NeutralUsage {
  const usage = record(raw);
  return {
    inputTokens: num(usage.prompt_tokens),
    outputTokens: num(usage.completion_tokens),
    cachedInputTokens: num(record(usage.prompt_tokens_details).cached_tokens),
    cacheWriteTokens: 0,
    reasoningTokens: num(record(usage.completion_tokens_details).reasoning_tokens),
  };
}

/** Anthropic's input_tokens leaves out cache reads and writes; the neutral input includes them. */
export function usageFromAnthropic(raw: unknown): NeutralUsage {
  const usage = record(raw);
  const cacheRead = num(usage.cache_read_input_tokens);
  const cacheWrite = num(usage.cache_creation_input_tokens);
  return {
    inputTokens: num(usage.input_tokens) + cacheRead + cacheWrite,
    outputTokens: num(usage.output_tokens),
    cachedInputTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    reasoningTokens: 0,
  };
}

/** Gemini bills thinking as output but counts it apart from candidatesTokenCount. */
export function usageFromGemini(raw: unknown): NeutralUsage {
  const usage = record(raw);
  const thoughts = num(usage.thoughtsTokenCount);
  return {
    inputTokens: num(usage.promptTokenCount),
    outputTokens: num(usage.candidatesTokenCount) + thoughts,
    cachedInputTokens: num(usage.cachedContentTokenCount),
    cacheWriteTokens: 0,
    reasoningTokens: thoughts,
  };
}

// --- neutral -> client forms ------------------------------------------------------------------

export function chatUsage(usage: NeutralUsage) {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedInputTokens },
    completion_tokens_details: { reasoning_tokens: usage.reasoningTokens },
  };
}

export function anthropicClientUsage(usage: NeutralUsage) {
  return {
    input_tokens: usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteTokens,
    output_tokens: usage.outputTokens,
    cache_creation_input_tokens: usage.cacheWriteTokens,
    cache_read_input_tokens: usage.cachedInputTokens,
  };
}

export function responsesClientUsage(usage: NeutralUsage) {
  return {
    input_tokens: usage.inputTokens,
    input_tokens_details: { cached_tokens: usage.cachedInputTokens },
    output_tokens: usage.outputTokens,
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens },
    total_tokens: usage.inputTokens + usage.outputTokens,
  };
}

export function geminiClientUsage(usage: NeutralUsage) {
  return {
    promptTokenCount: usage.inputTokens,
    candidatesTokenCount: usage.outputTokens - usage.reasoningTokens,
    totalTokenCount: usage.inputTokens + usage.outputTokens,
    ...(usage.cachedInputTokens > 0 ? { cachedContentTokenCount: usage.cachedInputTokens } : {}),
    ...(usage.reasoningTokens > 0 ? { thoughtsTokenCount: usage.reasoningTokens } : {}),
  };
}
