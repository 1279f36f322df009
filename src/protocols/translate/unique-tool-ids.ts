import type { ChatMessage } from "../openai-chat.ts";

function uniqueId(id: string, used: Set<string>): string {
  let candidate = id;
  for (let n = 1; used.has(candidate); n++) candidate = `${id}_${n}`;
  used.add(candidate);
  return candidate;
}

/**
 * Gemini clients may leave call ids out, and geminiToChat then names calls by function name, so two
 * turns calling the same function share an id, which Anthropic refuses. Renumbers repeated ids and
 * points each tool result at the call it answers: the latest call with that id, in call order.
 */
export function uniqueToolCallIds(messages: readonly ChatMessage[]): ChatMessage[] {
  const used = new Set<string>();
  let answers = new Map<string, string[]>();
  return messages.map((message) => {
    if (message.role === "assistant" && message.tool_calls?.length) {
      answers = new Map();
      const calls = message.tool_calls.map((call) => {
        const id = uniqueId(call.id, used);
        answers.set(call.id, [...(answers.get(call.id) ?? []), id]);
        return id === call.id ? call : { ...call, id };
      });
      return { ...message, tool_calls: calls };
    }
    if (message.role === "tool") {
      const queue = answers.get(message.tool_call_id);
      const id = queue && queue.length > 1 ? queue.shift() : queue?.[0];
      return id && id !== message.tool_call_id ? { ...message, tool_call_id: id } : message;
    }
    return message;
  });
}
