import { randomBytes } from "node:crypto";

/** A fresh id in the style the client protocol uses, e.g. "msg_3f9a..." or "chatcmpl-3f9a...". */
export function freshId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString("hex")}`;
}

/**
 * Gemini's function calls carry no ids, but every other protocol pairs a result with its call by id.
 * The ids must be unique across a conversation (Anthropic refuses duplicates), so they carry a
 * random part as well as the call's position.
 */
export function callIdFactory(): (index: number) => string {
  const base = randomBytes(6).toString("hex");
  return (index) => `call_${base}_${index}`;
}
