import { type ChatMessage, contentText } from "../openai-chat.ts";
import type { NeutralRequest, TranslateOptions } from "./types.ts";

// Many OpenAI-compatible servers know neither the developer role nor content-part arrays; system
// and plain strings mean the same to every one of them.
function upstreamMessage(message: ChatMessage): ChatMessage {
  if (message.role === "developer")
    return { role: "system", content: contentText(message.content) };
  if (message.role === "assistant") {
    const text = contentText(message.content);
    return {
      role: "assistant",
      content: text === "" && message.tool_calls?.length ? null : text,
      ...(message.tool_calls?.length ? { tool_calls: message.tool_calls } : {}),
    };
  }
  return { ...message, content: contentText(message.content) } as ChatMessage;
}

/** The Chat Completions body for a neutral request: nearly the neutral form itself. */
export function chatUpstreamBody(
  request: NeutralRequest,
  options: TranslateOptions,
): Record<string, unknown> {
  const { chat } = request;
  const limit = chat.max_completion_tokens ?? chat.max_tokens;
  const tools = chat.tools?.length ? chat.tools : undefined;
  return {
    model: options.upstreamModel,
    messages: chat.messages.map(upstreamMessage),
    ...(tools ? { tools } : {}),
    ...(tools && chat.tool_choice !== undefined ? { tool_choice: chat.tool_choice } : {}),
    ...(tools && request.parallelToolCalls === false ? { parallel_tool_calls: false } : {}),
    ...(limit ? { [options.chatMaxTokensField ?? "max_tokens"]: limit } : {}),
    ...(chat.temperature != null ? { temperature: chat.temperature } : {}),
    ...(request.topP !== undefined ? { top_p: request.topP } : {}),
    ...(request.stop ? { stop: request.stop } : {}),
    stream: request.stream,
    // Without it a streamed reply carries no usage to report back to the client.
    ...(request.stream ? { stream_options: { include_usage: true } } : {}),
  };
}
