import {
  type AnthropicMessagesRequest,
  anthropicToChat,
  parseAnthropicRequest,
} from "../anthropic-messages.ts";
import { MEDIA_FIX, untranslatable } from "./refuse.ts";
import type { NeutralRequest } from "./types.ts";

// Thinking is the model's private reasoning, signed for the provider that wrote it: no other
// provider can verify or use it, so it is dropped rather than refused.
const DROPPED = new Set(["thinking", "redacted_thinking"]);
const CARRIED = new Set(["text", "tool_use", "tool_result"]);

function checkBlock(block: { type: string; content?: unknown }, param: string): void {
  if (DROPPED.has(block.type)) return;
  if (!CARRIED.has(block.type)) {
    const fix = block.type === "image" || block.type === "document" ? MEDIA_FIX : "Remove it.";
    throw untranslatable(param, `a ${block.type} block`, fix);
  }
  if (block.type !== "tool_result" || !Array.isArray(block.content)) return;
  (block.content as { type: string }[]).forEach((inner, i) => {
    if (inner.type !== "text") {
      throw untranslatable(
        `${param}.content[${i}]`,
        `a ${inner.type} block in a tool result`,
        MEDIA_FIX,
      );
    }
  });
}

function checkBlocks(request: AnthropicMessagesRequest): void {
  request.messages.forEach((message, m) => {
    if (typeof message.content === "string") return;
    message.content.forEach((block, b) => {
      checkBlock(block, `messages[${m}].content[${b}]`);
    });
  });
}

// Server tools (web search, code execution, ...) run at Anthropic; no other provider has them.
function serverToolNames(request: AnthropicMessagesRequest): Set<string> {
  const names = (request.tools ?? [])
    .filter((tool) => tool.type !== undefined && tool.type !== "custom")
    .map((tool) => tool.name);
  return new Set(names);
}

function parallelToolCalls(request: AnthropicMessagesRequest): boolean | undefined {
  const choice = request.tool_choice as { disable_parallel_tool_use?: boolean } | undefined;
  return choice?.disable_parallel_tool_use === true ? false : undefined;
}

/** A Messages request (Claude Code) in neutral terms. */
export function anthropicClientRequest(body: unknown): NeutralRequest {
  const request = parseAnthropicRequest(body);
  checkBlocks(request);
  const chat = anthropicToChat(request);
  const server = serverToolNames(request);
  const tools = chat.tools?.filter((tool) => !server.has(tool.function.name));
  const topP = (request as { top_p?: unknown }).top_p;
  return {
    chat: { ...chat, tools: tools?.length ? tools : undefined },
    stream: request.stream === true,
    includeUsage: false,
    ...(request.stop_sequences?.length ? { stop: request.stop_sequences } : {}),
    ...(typeof topP === "number" ? { topP } : {}),
    ...(parallelToolCalls(request) === false ? { parallelToolCalls: false } : {}),
  };
}
