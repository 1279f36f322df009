import { safeJson } from "../safe-json.ts";
import type { SSEEvent } from "../sse.ts";
import { finishFromGemini } from "./finish.ts";
import { callIdFactory } from "./ids.ts";
import type { NeutralDelta, StreamDecoder } from "./types.ts";
import { readUpstreamError } from "./upstream-error.ts";
import { usageFromGemini } from "./usage.ts";

export interface GeminiPartIn {
  text?: unknown;
  thought?: unknown;
  functionCall?: { id?: unknown; name?: unknown; args?: unknown };
}
export interface GeminiChunk {
  error?: unknown;
  candidates?: { content?: { parts?: GeminiPartIn[] }; finishReason?: unknown }[];
  usageMetadata?: unknown;
  promptFeedback?: { blockReason?: unknown };
}

/**
 * The neutral deltas of one Gemini reply chunk. Function calls arrive whole and without ids (most
 * models), so each gets a fresh one; `nextCall` numbers them across the chunks of a stream.
 */
export function geminiChunkDeltas(
  chunk: GeminiChunk,
  nextCall: () => { index: number; id: (given: unknown) => string },
): NeutralDelta[] {
  const out: NeutralDelta[] = [];
  // Usage first: an Anthropic client's message_start wants the input count up front.
  if (chunk.usageMetadata) out.push({ type: "usage", usage: usageFromGemini(chunk.usageMetadata) });
  const candidate = chunk.candidates?.[0];
  for (const part of candidate?.content?.parts ?? []) {
    if (typeof part.text === "string" && part.text !== "" && part.thought !== true) {
      out.push({ type: "text", text: part.text });
    }
    const call = part.functionCall;
    if (call && typeof call.name === "string") {
      const { index, id } = nextCall();
      out.push({ type: "tool_start", index, id: id(call.id), name: call.name });
      out.push({ type: "tool_args", index, args: JSON.stringify(call.args ?? {}) });
    }
  }
  const reason = chunk.promptFeedback?.blockReason
    ? "content_filter"
    : finishFromGemini(candidate?.finishReason);
  if (reason) out.push({ type: "finish", reason });
  return out;
}

/** A counter handing out call numbers and ids (the upstream's when it gave one). */
export function callCounter(): () => { index: number; id: (given: unknown) => string } {
  const fresh = callIdFactory();
  let count = 0;
  return () => {
    const index = count++;
    return { index, id: (given) => (typeof given === "string" && given ? given : fresh(index)) };
  };
}

/** Reads Gemini stream chunks (each a partial GenerateContentResponse, usage cumulative). */
export function geminiStreamDecoder(): StreamDecoder {
  const nextCall = callCounter();
  return {
    push(event: SSEEvent): NeutralDelta[] {
      const chunk = safeJson(event.data) as GeminiChunk | undefined;
      if (!chunk || typeof chunk !== "object") return [];
      if (chunk.error) return [{ type: "error", error: readUpstreamError(0, chunk) }];
      return geminiChunkDeltas(chunk, nextCall);
    },
  };
}
