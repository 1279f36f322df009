import { safeJson } from "../safe-json.ts";
import type { SSEEvent } from "../sse.ts";
import { finishFromAnthropic } from "./finish.ts";
import type { NeutralDelta, StreamDecoder } from "./types.ts";
import { readUpstreamError } from "./upstream-error.ts";
import { usageFromAnthropic } from "./usage.ts";

type Data = Record<string, unknown> & { type?: unknown };
type Kind = { kind: "text" } | { kind: "tool"; index: number } | { kind: "other" };

/**
 * Reads Anthropic Messages events: input usage in message_start, the cumulative output count in
 * message_delta, blocks by index. Thinking, server tool and citation blocks are skipped.
 */
export function anthropicStreamDecoder(): StreamDecoder {
  const blocks = new Map<number, Kind>();
  let usage: Record<string, unknown> = {};
  let tools = 0;

  function blockStart(index: number, block: Data): NeutralDelta[] {
    if (block.type === "text") {
      blocks.set(index, { kind: "text" });
      return typeof block.text === "string" && block.text !== ""
        ? [{ type: "text", text: block.text }]
        : [];
    }
    if (block.type !== "tool_use") {
      blocks.set(index, { kind: "other" });
      return [];
    }
    const call = { kind: "tool" as const, index: tools++ };
    blocks.set(index, call);
    return [
      {
        type: "tool_start",
        index: call.index,
        id: String(block.id ?? ""),
        name: String(block.name ?? ""),
      },
    ];
  }

  function blockDelta(index: number, delta: Data): NeutralDelta[] {
    const block = blocks.get(index);
    if (block?.kind === "text" && delta.type === "text_delta" && typeof delta.text === "string") {
      return delta.text === "" ? [] : [{ type: "text", text: delta.text }];
    }
    const json = delta.partial_json;
    if (block?.kind === "tool" && delta.type === "input_json_delta" && typeof json === "string") {
      return json === "" ? [] : [{ type: "tool_args", index: block.index, args: json }];
    }
    return [];
  }

  function messageDelta(data: Data): NeutralDelta[] {
    usage = { ...usage, ...(data.usage as Record<string, unknown> | undefined) };
    const out: NeutralDelta[] = [{ type: "usage", usage: usageFromAnthropic(usage) }];
    const reason = finishFromAnthropic((data.delta as Data | undefined)?.stop_reason);
    if (reason) out.unshift({ type: "finish", reason });
    return out;
  }

  return {
    push(event: SSEEvent): NeutralDelta[] {
      const data = safeJson(event.data) as Data | undefined;
      if (!data || typeof data !== "object") return [];
      const index = typeof data.index === "number" ? data.index : -1;
      switch (data.type) {
        case "message_start":
          usage = { ...((data.message as Data | undefined)?.usage as Record<string, unknown>) };
          return [{ type: "usage", usage: usageFromAnthropic(usage) }];
        case "content_block_start":
          return blockStart(index, (data.content_block ?? {}) as Data);
        case "content_block_delta":
          return blockDelta(index, (data.delta ?? {}) as Data);
        case "message_delta":
          return messageDelta(data);
        case "message_stop":
          return [{ type: "done" }];
        case "error":
          return [{ type: "error", error: readUpstreamError(0, data) }];
        default:
          return [];
      }
    },
  };
}
