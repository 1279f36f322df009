import { safeJson } from "../safe-json.ts";
import type { SSEEvent } from "../sse.ts";
import { finishFromChat } from "./finish.ts";
import { callIdFactory } from "./ids.ts";
import type { NeutralDelta, StreamDecoder } from "./types.ts";
import { readUpstreamError } from "./upstream-error.ts";
import { usageFromChat } from "./usage.ts";

interface CallDelta {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}
interface Chunk {
  error?: unknown;
  choices?: { delta?: { content?: unknown; tool_calls?: CallDelta[] }; finish_reason?: unknown }[];
  usage?: unknown;
}

/**
 * Reads OpenAI chat chunks: tool call arguments arrive in pieces keyed by `index`, usage in a last
 * chunk with no choices (some servers put it on the finish chunk instead), then `[DONE]`.
 */
export function chatStreamDecoder(): StreamDecoder {
  // upstream index -> our call number and the id it started with
  const calls = new Map<number, { index: number; id: string | undefined }>();
  const newId = callIdFactory();
  let count = 0;

  // Some servers number every call 0 and tell them apart by id alone.
  function callDeltas(call: CallDelta): NeutralDelta[] {
    const key = call.index ?? 0;
    let known = calls.get(key);
    const out: NeutralDelta[] = [];
    if (!known || (call.id && known.id && call.id !== known.id)) {
      known = { index: count++, id: call.id };
      calls.set(key, known);
      const id = call.id || newId(known.index);
      out.push({ type: "tool_start", index: known.index, id, name: call.function?.name ?? "" });
    }
    const args = call.function?.arguments;
    if (typeof args === "string" && args !== "")
      out.push({ type: "tool_args", index: known.index, args });
    return out;
  }

  return {
    push(event: SSEEvent): NeutralDelta[] {
      if (event.data.trim() === "[DONE]") return [{ type: "done" }];
      const chunk = safeJson(event.data) as Chunk | undefined;
      if (!chunk || typeof chunk !== "object") return [];
      if (chunk.error) return [{ type: "error", error: readUpstreamError(0, chunk) }];
      const out: NeutralDelta[] = [];
      const choice = chunk.choices?.[0];
      const content = choice?.delta?.content;
      if (typeof content === "string" && content !== "") out.push({ type: "text", text: content });
      for (const call of choice?.delta?.tool_calls ?? []) out.push(...callDeltas(call));
      const reason = finishFromChat(choice?.finish_reason);
      if (reason) out.push({ type: "finish", reason });
      if (chunk.usage) out.push({ type: "usage", usage: usageFromChat(chunk.usage) });
      return out;
    },
  };
}
