import { type ChatMessage, contentText } from "../openai-chat.ts";

const isSystem = (m: ChatMessage) => m.role === "system" || m.role === "developer";

/**
 * For protocols with one system prompt (Anthropic, Gemini): the leading system and developer
 * messages form it; later ones (Claude Code's mid-conversation reminders, Codex's developer
 * messages after the first user turn) stay in place as user text, so nothing the agent said is lost.
 */
export function splitSystem(messages: readonly ChatMessage[]): {
  system: string;
  rest: ChatMessage[];
} {
  const lead = messages.findIndex((m) => !isSystem(m));
  const head = lead === -1 ? messages : messages.slice(0, lead);
  const rest = (lead === -1 ? [] : messages.slice(lead)).map((m) =>
    isSystem(m) ? ({ role: "user", content: contentText(m.content) } as ChatMessage) : m,
  );
  const system = head.map((m) => contentText(m.content)).filter((t) => t !== "");
  return { system: system.join("\n\n"), rest };
}
