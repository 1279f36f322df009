import { anthropicMessageResponse } from "../anthropic-messages-reply.ts";
import { geminiResponse } from "../gemini.ts";
import { chatCompletionResponse, type Usage } from "../openai-chat.ts";
import { responsesResponse } from "../openai-responses-reply.ts";
import { freshId } from "./ids.ts";
import type { NeutralReply, NeutralUsage, ProtocolName } from "./types.ts";
import {
  anthropicClientUsage,
  chatUsage,
  geminiClientUsage,
  responsesClientUsage,
} from "./usage.ts";

const plainUsage = (usage: NeutralUsage): Usage => ({
  prompt_tokens: usage.inputTokens,
  completion_tokens: usage.outputTokens,
  total_tokens: usage.inputTokens + usage.outputTokens,
});

/**
 * A whole reply in the client's protocol, built by the same code the simulator uses; only the usage
 * is replaced, because those builders know nothing of cached or reasoning tokens.
 */
export function clientReply(client: ProtocolName, reply: NeutralReply, model: string): unknown {
  const input = {
    model,
    content: reply.content,
    toolCalls: reply.toolCalls,
    usage: plainUsage(reply.usage),
    finishReason: reply.finish,
  };
  const now = Math.floor(Date.now() / 1000);
  if (client === "anthropic-messages") {
    const body = anthropicMessageResponse({ ...input, id: freshId("msg_") });
    return { ...body, usage: anthropicClientUsage(reply.usage) };
  }
  if (client === "openai-responses") {
    const body = responsesResponse({ ...input, id: freshId("resp_"), createdAt: now });
    return { ...body, usage: responsesClientUsage(reply.usage) };
  }
  if (client === "gemini") {
    const body = geminiResponse({ ...input, id: freshId("") });
    return { ...body, usageMetadata: geminiClientUsage(reply.usage) };
  }
  const body = chatCompletionResponse({ ...input, id: freshId("chatcmpl-"), created: now });
  return { ...body, usage: chatUsage(reply.usage) };
}
