import type { NeutralFinish } from "./types.ts";

/**
 * Some OpenAI-compatible servers and Gemini say "stop" after a tool call; agents decide whether to
 * run tools from the finish reason, so a reply that called tools reports tool_calls.
 */
export function effectiveFinish(reason: NeutralFinish | undefined, calledTools: boolean) {
  if (calledTools && (reason === undefined || reason === "stop")) return "tool_calls";
  return reason ?? "stop";
}

export function finishFromChat(reason: unknown): NeutralFinish | undefined {
  if (reason === "length" || reason === "tool_calls" || reason === "content_filter") return reason;
  if (reason === "function_call") return "tool_calls";
  return typeof reason === "string" ? "stop" : undefined;
}

export function finishFromAnthropic(reason: unknown): NeutralFinish | undefined {
  if (reason === "max_tokens" || reason === "model_context_window_exceeded") return "length";
  if (reason === "tool_use") return "tool_calls";
  if (reason === "refusal") return "content_filter";
  return typeof reason === "string" ? "stop" : undefined;
}

const GEMINI_BLOCKED = new Set([
  "SAFETY",
  "RECITATION",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "SPII",
  "IMAGE_SAFETY",
]);

export function finishFromGemini(reason: unknown): NeutralFinish | undefined {
  if (typeof reason !== "string" || reason === "FINISH_REASON_UNSPECIFIED") return undefined;
  if (reason === "MAX_TOKENS") return "length";
  return GEMINI_BLOCKED.has(reason) ? "content_filter" : "stop";
}

export function anthropicStop(reason: NeutralFinish): string {
  if (reason === "length") return "max_tokens";
  if (reason === "tool_calls") return "tool_use";
  if (reason === "content_filter") return "refusal";
  return "end_turn";
}

export function geminiFinish(reason: NeutralFinish): string {
  if (reason === "length") return "MAX_TOKENS";
  if (reason === "content_filter") return "SAFETY";
  return "STOP";
}
