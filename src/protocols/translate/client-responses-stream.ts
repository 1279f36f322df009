import { encodeSSE } from "../sse.ts";
import { effectiveFinish } from "./finish.ts";
import { freshId } from "./ids.ts";
import type { NeutralDelta, NeutralFinish, NeutralUsage, StreamEncoder } from "./types.ts";
import { noUsage, responsesClientUsage } from "./usage.ts";

type Item = Record<string, unknown>;
type Open =
  | { kind: "message"; id: string; output: number; text: string }
  | { kind: "call"; id: string; output: number; callId: string; name: string; args: string };

const outputText = (text: string) => ({ type: "output_text", text, annotations: [], logprobs: [] });

function messageItem(open: Extract<Open, { kind: "message" }>, done: boolean): Item {
  return {
    id: open.id,
    type: "message",
    status: done ? "completed" : "in_progress",
    role: "assistant",
    content: done ? [outputText(open.text)] : [],
  };
}

function callItem(open: Extract<Open, { kind: "call" }>, done: boolean): Item {
  return {
    id: open.id,
    type: "function_call",
    status: done ? "completed" : "in_progress",
    call_id: open.callId,
    name: open.name,
    arguments: done ? open.args : "",
  };
}

/**
 * Writes a Responses event stream as deltas arrive (Codex parses it): response.created and
 * .in_progress, per output item its added / delta / done events, and response.completed (or
 * .incomplete) with the whole response and its usage once the reply is complete.
 */
export function responsesStreamEncoder(model: string): StreamEncoder {
  const responseId = freshId("resp_");
  const createdAt = Math.floor(Date.now() / 1000);
  const done: Item[] = [];
  let sequence = 0;
  let open: Open | undefined;
  let usage: NeutralUsage = noUsage;
  let finish: NeutralFinish | undefined;
  let started = false;
  let closed = false;
  let calledTools = false;

  const emit = (type: string, fields: Record<string, unknown>) =>
    encodeSSE({ type, sequence_number: sequence++, ...fields }, type);

  const response = (status: string, extra: Record<string, unknown> = {}) => ({
    id: responseId,
    object: "response",
    created_at: createdAt,
    status,
    error: null,
    incomplete_details: null,
    model,
    output: status === "in_progress" ? [] : done,
    parallel_tool_calls: true,
    tool_choice: "auto",
    tools: [],
    usage: null,
    ...extra,
  });

  function start(): string {
    if (started) return "";
    started = true;
    return (
      emit("response.created", { response: response("in_progress") }) +
      emit("response.in_progress", { response: response("in_progress") })
    );
  }

  function closeItem(): string {
    const item = open;
    if (!item) return "";
    open = undefined;
    const output_index = item.output;
    if (item.kind === "call") {
      done.push(callItem(item, true));
      const at = { item_id: item.id, output_index };
      return (
        emit("response.function_call_arguments.done", {
          ...at,
          name: item.name,
          arguments: item.args,
        }) + emit("response.output_item.done", { output_index, item: callItem(item, true) })
      );
    }
    done.push(messageItem(item, true));
    const at = { item_id: item.id, output_index, content_index: 0 };
    return (
      emit("response.output_text.done", { ...at, text: item.text, logprobs: [] }) +
      emit("response.content_part.done", { ...at, part: outputText(item.text) }) +
      emit("response.output_item.done", { output_index, item: messageItem(item, true) })
    );
  }

  function text(delta: string): string {
    let out = "";
    if (open?.kind !== "message") {
      out += closeItem();
      const item = { kind: "message" as const, id: freshId("msg_"), output: done.length, text: "" };
      open = item;
      const at = { item_id: item.id, output_index: item.output, content_index: 0 };
      out += emit("response.output_item.added", {
        output_index: item.output,
        item: messageItem(item, false),
      });
      out += emit("response.content_part.added", { ...at, part: outputText("") });
    }
    open.text += delta;
    const at = { item_id: open.id, output_index: open.output, content_index: 0 };
    return out + emit("response.output_text.delta", { ...at, delta, logprobs: [] });
  }

  function toolStart(delta: Extract<NeutralDelta, { type: "tool_start" }>): string {
    calledTools = true;
    const out = closeItem();
    const item = {
      kind: "call" as const,
      id: freshId("fc_"),
      output: done.length,
      callId: delta.id,
      name: delta.name,
      args: "",
    };
    open = item;
    return (
      out +
      emit("response.output_item.added", { output_index: item.output, item: callItem(item, false) })
    );
  }

  // Servers that interleave parallel calls' arguments are not reordered: only the open call's count.
  function toolArgs(args: string): string {
    if (open?.kind !== "call") return "";
    open.args += args;
    return emit("response.function_call_arguments.delta", {
      item_id: open.id,
      output_index: open.output,
      delta: args,
    });
  }

  function close(): string {
    if (closed) return "";
    closed = true;
    const reason = effectiveFinish(finish, calledTools);
    const incomplete = reason === "length";
    const final = response(incomplete ? "incomplete" : "completed", {
      incomplete_details: incomplete ? { reason: "max_output_tokens" } : null,
      usage: responsesClientUsage(usage),
    });
    const type = incomplete ? "response.incomplete" : "response.completed";
    return start() + closeItem() + emit(type, { response: final });
  }

  function fail(error: Extract<NeutralDelta, { type: "error" }>["error"]): string {
    closed = true;
    const code = error.type ?? "server_error";
    return (
      start() +
      emit("error", { code, message: error.message, param: null }) +
      emit("response.failed", {
        response: response("failed", { error: { code, message: error.message } }),
      })
    );
  }

  function body(delta: NeutralDelta): string {
    switch (delta.type) {
      case "text":
        return text(delta.text);
      case "tool_start":
        return toolStart(delta);
      case "tool_args":
        return toolArgs(delta.args);
      case "finish":
        finish = delta.reason;
        return closeItem();
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
      if (delta.type === "error") return fail(delta.error);
      if (delta.type === "usage" || delta.type === "done") return body(delta);
      return start() + body(delta);
    },
    close,
  };
}
