import { geminiErrorBody } from "../gemini.ts";
import { safeJson } from "../safe-json.ts";
import { encodeSSE } from "../sse.ts";
import { effectiveFinish, geminiFinish } from "./finish.ts";
import { freshId } from "./ids.ts";
import type { NeutralDelta, NeutralFinish, NeutralUsage, StreamEncoder } from "./types.ts";
import { geminiClientUsage, noUsage } from "./usage.ts";

interface PendingCall {
  id: string;
  name: string;
  args: string;
}

function argsObject(text: string): Record<string, unknown> {
  const parsed = safeJson(text);
  return parsed && typeof parsed === "object" && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : {};
}

/**
 * Writes streamGenerateContent chunks: text as it arrives; function calls only whole, because a
 * Gemini functionCall part carries its arguments as one object. The last chunk holds the pending
 * calls, the finish reason and the usage.
 */
export function geminiStreamEncoder(model: string): StreamEncoder {
  const responseId = freshId("");
  const calls = new Map<number, PendingCall>();
  let usage: NeutralUsage = noUsage;
  let finish: NeutralFinish | undefined;
  let closed = false;

  const chunk = (parts: unknown[], last = false) =>
    encodeSSE({
      candidates: [
        {
          content: { role: "model", parts },
          ...(last ? { finishReason: geminiFinish(effectiveFinish(finish, calls.size > 0)) } : {}),
          index: 0,
        },
      ],
      ...(last ? { usageMetadata: geminiClientUsage(usage) } : {}),
      modelVersion: model,
      responseId,
    });

  // The call id goes back to the client, which answers with it (Gemini CLI does).
  const callPart = (call: PendingCall) => ({
    functionCall: { id: call.id, name: call.name, args: argsObject(call.args) },
  });

  function close(): string {
    if (closed) return "";
    closed = true;
    return chunk([...calls.values()].map(callPart), true);
  }

  function body(delta: NeutralDelta): string {
    switch (delta.type) {
      case "text":
        return chunk([{ text: delta.text }]);
      case "tool_start":
        calls.set(delta.index, { id: delta.id, name: delta.name, args: "" });
        return "";
      case "tool_args": {
        const call = calls.get(delta.index);
        if (call) call.args += delta.args;
        return "";
      }
      case "finish":
        finish = delta.reason;
        return "";
      case "usage":
        usage = delta.usage;
        return "";
      case "done":
        return close();
      default:
        return "";
    }
  }

  return {
    push(delta) {
      if (closed) return "";
      if (delta.type !== "error") return body(delta);
      closed = true;
      // @google/genai throws on a chunk carrying `error`, as Google reports mid-stream failures.
      return encodeSSE(geminiErrorBody(delta.error.status, delta.error.message));
    },
    close,
  };
}
