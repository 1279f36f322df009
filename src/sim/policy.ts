import type { ChatRequest } from "../protocols/index.ts";
import { contentText } from "../protocols/index.ts";

export interface PolicyToolCall {
  name: string;
  /** A string is sent verbatim, so a policy can emit malformed JSON on purpose. */
  arguments: Record<string, unknown> | string;
}

export interface PolicyReply {
  content?: string;
  toolCalls?: PolicyToolCall[];
}

export interface PolicyContext {
  /** 0-based index of this request among all requests the simulator has served. */
  requestIndex: number;
}

export type Policy = (
  request: ChatRequest,
  ctx: PolicyContext,
) => PolicyReply | Promise<PolicyReply>;

export class SimulatorError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "SimulatorError";
    this.code = code;
  }
}

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
