import { openAIErrorBody } from "../errors.ts";
import type { ChatCompletionChunk } from "../openai-chat.ts";
import { encodeSSE } from "../sse.ts";
import { effectiveFinish } from "./finish.ts";
import { freshId } from "./ids.ts";
import type { NeutralDelta, NeutralUsage, StreamEncoder } from "./types.ts";
import { chatUsage } from "./usage.ts";

type Delta = ChatCompletionChunk["choices"][number]["delta"];

/**
 * Writes chat.completion.chunk events as deltas arrive: the role on the first, content and tool call
 * pieces keyed by index, the finish reason, then (if the client asked) a usage chunk with no choices
 * and `[DONE]`.
 */
export function chatStreamEncoder(model: string, includeUsage: boolean): StreamEncoder {
  const id = freshId("chatcmpl-");
  const created = Math.floor(Date.now() / 1000);
  let usage: NeutralUsage | undefined;
  let started = false;
  let finished = false;
  let closed = false;
  let calledTools = false;

  const chunk = (delta: Delta, finish: string | null = null) =>
    encodeSSE({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    });

  function start(): string {
    if (started) return "";
    started = true;
    return chunk({ role: "assistant", content: "" });
  }

  function finish(reason: Parameters<typeof effectiveFinish>[0]): string {
    if (finished) return "";
    finished = true;
    return start() + chunk({}, effectiveFinish(reason, calledTools));
  }

  function close(): string {
    if (closed) return "";
    closed = true;
    const usageChunk =
      includeUsage && usage
        ? encodeSSE({
            id,
            object: "chat.completion.chunk",
            created,
            model,
            choices: [],
            usage: chatUsage(usage),
          })
        : "";
    return finish(undefined) + usageChunk + encodeSSE("[DONE]");
  }

  function body(delta: NeutralDelta): string {
    switch (delta.type) {
      case "text":
        return start() + chunk({ content: delta.text });
      case "tool_start": {
        calledTools = true;
        const call = { index: delta.index, id: delta.id, type: "function" as const };
        return (
          start() +
          chunk({ tool_calls: [{ ...call, function: { name: delta.name, arguments: "" } }] })
        );
      }
      case "tool_args":
        return chunk({ tool_calls: [{ index: delta.index, function: { arguments: delta.args } }] });
      case "finish":
        return finish(delta.reason);
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
      // OpenAI's SDKs throw on a chunk carrying `error`, which is how OpenAI reports mid-stream failures.
      const { status, message, type } = delta.error;
      return encodeSSE(openAIErrorBody(status, message, undefined, type ?? null));
    },
    close,
  };
}
