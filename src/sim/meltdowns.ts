import type { ChatRequest } from "../protocols/index.ts";
import { SimulatorError } from "./errors.ts";
import { escapeCall, hugeText, latestToolCall } from "./failure-modes.ts";
import { conversationTurn, messagesText, type Policy, type PolicyToolCall } from "./policy.ts";

/**
 * Scripted meltdowns, one per conversation, for the watchdog's and the circuit breaker's proof: a
 * conversation whose first user message contains a marker melts down that way from its first turn
 * (or, for the loop, its second) on, every time, while other conversations get the inner policy.
 * - stall: the stream stops after its first event and never resumes;
 * - loop: the first tool call, repeated forever;
 * - runaway: every reply carries `runawayBytes` of text and reads a file (alternating, so it is no loop);
 * - flood: every reply is `runawayBytes` of text with a tool call after it;
 * - escape: every turn tries to leave the workspace (local paths and commands only);
 * - outage: every request fails with HTTP 503, as a provider that is down.
 */
export const MELTDOWN_SCRIPTS = ["stall", "loop", "runaway", "flood", "escape", "outage"] as const;
export type MeltdownScript = (typeof MELTDOWN_SCRIPTS)[number];

export interface MeltdownOptions {
  /** Marker text in a conversation's first user message (e.g. an order's title) → its meltdown. */
  markers: Record<string, MeltdownScript>;
  /** Text per reply for runaway and flood (default 64 KiB). */
  runawayBytes?: number;
}

export function withMeltdowns(inner: Policy, options: MeltdownOptions): Policy {
  for (const [marker, script] of Object.entries(options.markers)) {
    if (!marker) throw new SimulatorError("invalid_meltdown", "a meltdown marker is empty");
    if (!(MELTDOWN_SCRIPTS as readonly string[]).includes(script)) {
      throw new SimulatorError(
        "invalid_meltdown",
        `unknown meltdown "${script}" for marker "${marker}"; expected one of ${MELTDOWN_SCRIPTS.join(", ")}`,
      );
    }
  }
  const bytes = options.runawayBytes ?? 64 * 1024;
  return async (request, ctx) => {
    const script = scriptOf(request, options.markers);
    if (!script) return inner(request, ctx);
    const turn = conversationTurn(request);
    switch (script) {
      case "stall":
        return { fault: { kind: "stall", afterEvents: 1 } };
      case "outage":
        return { fault: { kind: "server_error", status: 503 } };
      case "loop": {
        const previous = latestToolCall(request);
        return previous ? { toolCalls: [previous] } : inner(request, ctx);
      }
      case "runaway":
        // A little slower than a model at full speed, so the run is caught while it still spends.
        return { content: hugeText(bytes), toolCalls: [readCall(request, turn)], delayMs: 250 };
      case "flood":
        return { content: hugeText(bytes), toolCalls: [readCall(request, turn)] };
      case "escape":
        return { toolCalls: [escapeCall(request, (turn * 0.37) % 1)] };
      default: {
        const unknown: never = script;
        throw new SimulatorError("invalid_meltdown", `unknown meltdown ${String(unknown)}`);
      }
    }
  };
}

function scriptOf(
  request: ChatRequest,
  markers: Record<string, MeltdownScript>,
): MeltdownScript | undefined {
  const first = request.messages.find((m) => m.role === "user");
  if (!first) return undefined;
  const text = messagesText({ ...request, messages: [first] }, ["user"]);
  for (const [marker, script] of Object.entries(markers)) if (text.includes(marker)) return script;
  return undefined;
}

/** A harmless read that changes every turn, so a run that only reads is not taken for a loop. */
function readCall(request: ChatRequest, turn: number): PolicyToolCall {
  const reader = (request.tools ?? []).find((t) => /read/i.test(t.function.name));
  const name = reader?.function.name ?? "read_file";
  return { name, arguments: { path: turn % 2 === 0 ? "package.json" : "README.md" } };
}
