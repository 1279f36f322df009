import { randomUUID } from "node:crypto";
import {
  type ChatRequest,
  type FinishReason,
  type ToolCall,
  usageFor,
} from "../protocols/index.ts";
import type { PolicyReply } from "./policy.ts";
import type { RenderInput, SimProtocol } from "./protocols.ts";

export function shortId(): string {
  return randomUUID().replaceAll("-", "").slice(0, 24);
}

function toolCalls(reply: PolicyReply, prefix: string): ToolCall[] {
  return (reply.toolCalls ?? []).map((call) => ({
    id: `${prefix}${shortId()}`,
    name: call.name,
    arguments: typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments),
  }));
}

/** The request's output limit, whichever field its protocol put it in. */
export function maxOutputTokens(request: ChatRequest): number | undefined {
  return request.max_completion_tokens ?? request.max_tokens ?? undefined;
}

/**
 * Turns a policy's reply into the reply the client gets: ids in the protocol's style and usage
 * counted from the actual text. A reply longer than the request's output limit is cut there, as a
 * real model stops: its text truncated, its tool calls dropped, finish reason "length".
 */
export function renderInput(
  request: ChatRequest,
  reply: PolicyReply,
  protocol: SimProtocol,
): RenderInput {
  let calls = toolCalls(reply, protocol.toolCallIdPrefix);
  let content = reply.content ? reply.content : null;
  let finishReason: FinishReason = calls.length > 0 ? "tool_calls" : "stop";
  let usage = usageFor(request, { content, toolCalls: calls });
  const limit = maxOutputTokens(request);
  if (limit !== undefined && usage.completion_tokens > limit) {
    // countTokens is ceil(code points / 4), so 4 code points per token fills the limit exactly.
    const cut = Array.from(content ?? "")
      .slice(0, limit * 4)
      .join("");
    content = cut === "" ? null : cut;
    calls = [];
    finishReason = "length";
    usage = usageFor(request, { content, toolCalls: calls });
  }
  return {
    id: `${protocol.replyIdPrefix}${shortId()}`,
    model: request.model,
    created: Math.floor(Date.now() / 1000),
    content,
    toolCalls: calls,
    usage,
    finishReason,
  };
}
