import { type ChatRequest, contentText, type ToolCall, type Usage } from "./openai-chat.ts";

/**
 * Deterministic token estimate: ceil(code points / 4), at least 1 for non-empty text, 0 for empty.
 * Four characters per token is the usual rule of thumb for English BPE vocabularies; a real tokenizer
 * would tie the simulator and gateway to one vendor's vocabulary, and metering tests only need the
 * number to follow the actual text deterministically.
 */
export function countTokens(text: string): number {
  if (text === "") return 0;
  return Math.max(1, Math.ceil(Array.from(text).length / 4));
}

/** Everything in the request the model would read: message text, tool calls in history, tool definitions. */
export function promptText(request: ChatRequest): string {
  const parts: string[] = [];
  for (const message of request.messages) {
    parts.push(message.role, contentText(message.content));
    if (message.role === "assistant") {
      for (const call of message.tool_calls ?? [])
        parts.push(call.function.name, call.function.arguments);
    }
    if (message.role === "tool") parts.push(message.tool_call_id);
  }
  if (request.tools && request.tools.length > 0) parts.push(JSON.stringify(request.tools));
  return parts.filter((p) => p !== "").join("\n");
}

export interface ReplyForUsage {
  content?: string | null;
  toolCalls?: Pick<ToolCall, "name" | "arguments">[];
}

/** What the model wrote: content plus tool call names and raw argument strings. */
export function completionText(reply: ReplyForUsage): string {
  const parts = [reply.content ?? ""];
  for (const call of reply.toolCalls ?? []) parts.push(call.name, call.arguments);
  return parts.filter((p) => p !== "").join("\n");
}

export function usageFor(request: ChatRequest, reply: ReplyForUsage): Usage {
  const prompt = countTokens(promptText(request));
  const completion = countTokens(completionText(reply));
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
}
