import { anthropicErrorBody } from "../errors.ts";
import { encodeSSE } from "../sse.ts";
import { anthropicStop, effectiveFinish } from "./finish.ts";
import { freshId } from "./ids.ts";
import type { NeutralDelta, NeutralFinish, StreamEncoder } from "./types.ts";
import { anthropicClientUsage, noUsage } from "./usage.ts";

const event = (type: string, fields: Record<string, unknown> = {}) =>
  encodeSSE({ type, ...fields }, type);

/**
 * Writes a Messages event stream as deltas arrive: message_start on the first one, one
 * start/delta/stop group per block (a block is closed before the next opens, as Anthropic does),
 * and message_delta plus message_stop once the reply is complete.
 */
export function anthropicStreamEncoder(model: string): StreamEncoder {
  let usage = noUsage;
  let started = false;
  let closed = false;
  let nextBlock = 0;
  let open: { block: number; tool?: number } | undefined;
  const toolBlocks = new Map<number, number>();
  let finish: NeutralFinish | undefined;

  function start(): string {
    if (started) return "";
    started = true;
    const message = {
      id: freshId("msg_"),
      type: "message",
      role: "assistant",
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { ...anthropicClientUsage(usage), output_tokens: 0 },
    };
    return event("message_start", { message });
  }

  function closeBlock(): string {
    if (!open) return "";
    const out = event("content_block_stop", { index: open.block });
    open = undefined;
    return out;
  }

  function openBlock(content_block: Record<string, unknown>, tool?: number): string {
    const out = closeBlock();
    open = { block: nextBlock++, ...(tool !== undefined ? { tool } : {}) };
    if (tool !== undefined) toolBlocks.set(tool, open.block);
    return out + event("content_block_start", { index: open.block, content_block });
  }

  function text(value: string): string {
    const opening = open && open.tool === undefined ? "" : openBlock({ type: "text", text: "" });
    const delta = { type: "text_delta", text: value };
    return opening + event("content_block_delta", { index: open?.block, delta });
  }

  // Arguments for a call whose block is already closed (servers that interleave parallel calls)
  // still go to that call's own index, which is where the client accumulates them.
  function toolArgs(tool: number, args: string): string {
    const index = toolBlocks.get(tool);
    if (index === undefined) return "";
    return event("content_block_delta", {
      index,
      delta: { type: "input_json_delta", partial_json: args },
    });
  }

  function close(): string {
    if (closed) return "";
    closed = true;
    const stop_reason = anthropicStop(effectiveFinish(finish, toolBlocks.size > 0));
    return (
      start() +
      closeBlock() +
      event("message_delta", {
        delta: { stop_reason, stop_sequence: null },
        usage: anthropicClientUsage(usage),
      }) +
      event("message_stop")
    );
  }

  function fail(delta: Extract<NeutralDelta, { type: "error" }>): string {
    closed = true;
    const body = anthropicErrorBody(delta.error.status, delta.error.message);
    return encodeSSE(body, "error");
  }

  function body(delta: NeutralDelta): string {
    switch (delta.type) {
      case "text":
        return text(delta.text);
      case "tool_start":
        return openBlock(
          { type: "tool_use", id: delta.id, name: delta.name, input: {} },
          delta.index,
        );
      case "tool_args":
        return toolArgs(delta.index, delta.args);
      case "finish":
        finish = delta.reason;
        return closeBlock();
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
      if (delta.type === "error") return fail(delta);
      // Usage before anything else is held so that message_start can report the input count.
      if (delta.type === "usage" && !started) {
        usage = delta.usage;
        return "";
      }
      const head = delta.type === "done" ? "" : start();
      return head + body(delta);
    },
    close,
  };
}
