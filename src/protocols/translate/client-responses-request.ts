import {
  parseResponsesRequest,
  type ResponsesRequest,
  responsesToChat,
} from "../openai-responses.ts";
import { MEDIA_FIX, untranslatable } from "./refuse.ts";
import type { NeutralRequest } from "./types.ts";

// Reasoning items hold the provider's encrypted reasoning, which no other provider can read.
const DROPPED_ITEMS = new Set(["reasoning"]);
const CARRIED_ITEMS = new Set(["message", "function_call", "function_call_output"]);
const TEXT_PARTS = new Set(["input_text", "output_text", "text", "refusal"]);

function checkParts(parts: unknown, param: string): void {
  if (!Array.isArray(parts)) return;
  (parts as { type: string }[]).forEach((part, p) => {
    if (!TEXT_PARTS.has(part.type)) {
      throw untranslatable(`${param}[${p}]`, `an ${part.type} part`, MEDIA_FIX);
    }
  });
}

function checkItem(item: Record<string, unknown>, param: string): void {
  const type = typeof item.type === "string" ? item.type : "message";
  if (DROPPED_ITEMS.has(type)) return;
  if (!CARRIED_ITEMS.has(type)) {
    throw untranslatable(
      param,
      `a ${type} item`,
      "Only messages, function calls and their outputs cross protocols; built-in tools and stored items do not.",
    );
  }
  checkParts(item.content, `${param}.content`);
  checkParts(item.output, `${param}.output`);
}

function check(request: ResponsesRequest): void {
  if (request.previous_response_id) {
    throw untranslatable(
      "previous_response_id",
      "a previous_response_id",
      "The translation is stateless and the upstream keeps no responses: send the whole conversation in `input` (Codex does when store is false).",
    );
  }
  if (!Array.isArray(request.input)) return;
  request.input.forEach((item, i) => {
    checkItem(item as Record<string, unknown>, `input[${i}]`);
  });
}

/** A Responses request (Codex) in neutral terms. */
export function responsesClientRequest(body: unknown): NeutralRequest {
  const request = parseResponsesRequest(body);
  check(request);
  const extra = request as { top_p?: unknown; parallel_tool_calls?: unknown };
  return {
    chat: responsesToChat(request),
    stream: request.stream === true,
    includeUsage: false,
    ...(typeof extra.top_p === "number" ? { topP: extra.top_p } : {}),
    ...(extra.parallel_tool_calls === false ? { parallelToolCalls: false } : {}),
  };
}
