import { type ChatRequest, parseChatRequest } from "../openai-chat.ts";
import { MEDIA_FIX, untranslatable } from "./refuse.ts";
import type { NeutralRequest } from "./types.ts";

function checkContent(request: ChatRequest): void {
  request.messages.forEach((message, m) => {
    if (!Array.isArray(message.content)) return;
    message.content.forEach((part, p) => {
      if (part.type !== "text") {
        throw untranslatable(`messages[${m}].content[${p}]`, `a ${part.type} part`, MEDIA_FIX);
      }
    });
  });
}

function stopList(stop: unknown): string[] | undefined {
  if (typeof stop === "string") return [stop];
  if (Array.isArray(stop)) return stop.filter((s): s is string => typeof s === "string");
  return undefined;
}

/** A Chat Completions request (OpenCode, the built-in agent) in neutral terms. */
export function chatClientRequest(body: unknown): NeutralRequest {
  const request = parseChatRequest(body);
  checkContent(request);
  const extra = request as {
    n?: unknown;
    stop?: unknown;
    top_p?: unknown;
    parallel_tool_calls?: unknown;
  };
  if (typeof extra.n === "number" && extra.n > 1) {
    throw untranslatable("n", "more than one choice (n > 1)", "Ask for one choice per request.");
  }
  const stop = stopList(extra.stop);
  return {
    chat: request,
    stream: request.stream === true,
    includeUsage: request.stream === true && request.stream_options?.include_usage === true,
    ...(stop?.length ? { stop } : {}),
    ...(typeof extra.top_p === "number" ? { topP: extra.top_p } : {}),
    ...(extra.parallel_tool_calls === false ? { parallelToolCalls: false } : {}),
  };
}
