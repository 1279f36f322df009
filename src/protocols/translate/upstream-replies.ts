import { safeJson } from "../safe-json.ts";
import { effectiveFinish, finishFromAnthropic, finishFromChat } from "./finish.ts";
import { callIdFactory } from "./ids.ts";
import type { NeutralReply, ProtocolName } from "./types.ts";
import { callCounter, type GeminiChunk, geminiChunkDeltas } from "./upstream-gemini-stream.ts";
import { noUsage, usageFromAnthropic, usageFromChat } from "./usage.ts";

type Obj = Record<string, unknown>;
const obj = (value: unknown): Obj => (value && typeof value === "object" ? (value as Obj) : {});
const str = (value: unknown): string => (typeof value === "string" ? value : "");

function reply(
  content: string,
  toolCalls: NeutralReply["toolCalls"],
  finish: NeutralReply["finish"] | undefined,
  usage: NeutralReply["usage"],
): NeutralReply {
  return {
    content: content === "" ? null : content,
    toolCalls,
    finish: effectiveFinish(finish, toolCalls.length > 0),
    usage,
  };
}

function fromChat(body: Obj): NeutralReply {
  const choice = obj((body.choices as unknown[] | undefined)?.[0]);
  const message = obj(choice.message);
  const newId = callIdFactory();
  const calls = ((message.tool_calls as unknown[] | undefined) ?? []).map((raw, i) => {
    const call = obj(raw);
    const fn = obj(call.function);
    return { id: str(call.id) || newId(i), name: str(fn.name), arguments: str(fn.arguments) };
  });
  return reply(
    str(message.content),
    calls,
    finishFromChat(choice.finish_reason),
    usageFromChat(body.usage),
  );
}

function fromAnthropic(body: Obj): NeutralReply {
  const blocks = ((body.content as unknown[] | undefined) ?? []).map(obj);
  const text = blocks.filter((b) => b.type === "text").map((b) => str(b.text));
  const calls = blocks
    .filter((b) => b.type === "tool_use")
    .map((b) => ({ id: str(b.id), name: str(b.name), arguments: JSON.stringify(b.input ?? {}) }));
  return reply(
    text.join(""),
    calls,
    finishFromAnthropic(body.stop_reason),
    usageFromAnthropic(body.usage),
  );
}

function fromGemini(body: Obj): NeutralReply {
  let text = "";
  let finish: NeutralReply["finish"] | undefined;
  let usage = noUsage;
  const calls = new Map<number, NeutralReply["toolCalls"][number]>();
  for (const delta of geminiChunkDeltas(body as GeminiChunk, callCounter())) {
    if (delta.type === "text") text += delta.text;
    else if (delta.type === "tool_start")
      calls.set(delta.index, { id: delta.id, name: delta.name, arguments: "" });
    else if (delta.type === "tool_args") {
      const call = calls.get(delta.index);
      if (call) call.arguments += delta.args;
    } else if (delta.type === "finish") finish = delta.reason;
    else if (delta.type === "usage") usage = delta.usage;
  }
  return reply(text, [...calls.values()], finish, usage);
}

/** A whole upstream reply (parsed JSON, or its text) in neutral terms. */
export function readUpstreamReply(upstream: ProtocolName, raw: unknown): NeutralReply {
  const body = obj(typeof raw === "string" ? safeJson(raw) : raw);
  if (upstream === "anthropic-messages") return fromAnthropic(body);
  if (upstream === "gemini") return fromGemini(body);
  return fromChat(body);
}
