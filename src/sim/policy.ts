import type { ChatRequest, WireProtocol } from "../protocols/index.ts";
import { contentText } from "../protocols/index.ts";
import { SimulatorError } from "./errors.ts";
import type { FaultInput } from "./faults.ts";

export interface PolicyToolCall {
  name: string;
  /** A string is sent verbatim, so a policy can emit malformed JSON on purpose. */
  arguments: Record<string, unknown> | string;
}

export interface PolicyReply {
  content?: string;
  toolCalls?: PolicyToolCall[];
  /** Serve this fault instead of (or, for stream faults, in the middle of) the reply. */
  fault?: FaultInput;
  /** Extra wait before the first token, on top of the simulator's latency: a model that stalls. */
  delayMs?: number;
}

export interface PolicyContext {
  /** 0-based index of this request among all model requests the simulator has served. */
  requestIndex: number;
  /** The wire protocol the request arrived on; policies see every protocol in the same neutral form. */
  protocol?: WireProtocol["name"];
}

export type Policy = (
  request: ChatRequest,
  ctx: PolicyContext,
) => PolicyReply | Promise<PolicyReply>;

/** A conversation's turn: how many replies the model has already given in it. */
export function conversationTurn(request: ChatRequest): number {
  return request.messages.filter((m) => m.role === "assistant").length;
}

/** Text of all messages with the given roles, in order. */
export function messagesText(request: ChatRequest, roles: readonly string[]): string {
  return request.messages
    .filter((m) => roles.includes(m.role))
    .map((m) => contentText(m.content))
    .join("\n");
}

/**
 * Replies in order, picking by turn rather than by call count so that concurrent or repeated
 * conversations each get the script from the start.
 */
export function scriptedPolicy(replies: readonly PolicyReply[]): Policy {
  return (request) => {
    const turn = conversationTurn(request);
    const reply = replies[turn];
    if (!reply) {
      throw new SimulatorError(
        "script_exhausted",
        `scripted policy has ${replies.length} replies but the conversation is at turn ${turn}`,
      );
    }
    return reply;
  };
}
