import { createHash } from "node:crypto";
import { NightshiftError } from "../errors/index.ts";
import type { ChatRequest } from "../protocols/index.ts";
import { type DemoOrder, demoOrders, demoTestCommand, resolveTsxLoader } from "./demo-scenario.ts";
import { conversationTurn, messagesText, type Policy, type PolicyReply } from "./policy.ts";

export interface DemoPolicyOptions {
  seed?: number;
  /** Share of first attempts that write a patch the tests catch. */
  brokenPatchRate?: number;
  /** Share of first attempts that give up without writing anything. */
  giveUpRate?: number;
  /** Share of retries (prompt carries a "previous attempt" section) that write the correct patch. */
  fixOnFeedbackRate?: number;
}

export type DemoDecision = "correct" | "broken" | "give_up";

export class DemoPolicyError extends NightshiftError {
  constructor(message: string) {
    super("invalid_demo_policy_options", message, {
      hint: "give rates from 0 to 1 (nightshift demo --broken-rate, --give-up-rate; [simulator] in nightshift.toml)",
    });
    this.name = "DemoPolicyError";
  }
}

const FEEDBACK_MARKER = "previous attempt";

export const UNKNOWN_ORDER_REPLY =
  "This is the nightshift demo simulator, not a real model: it can only work on the demo project's " +
  "work orders, and this request does not name one of them, so there is nothing it can do here.";

export const GIVE_UP_REPLY = "I could not work out how to do this; giving up.";

/** Uniform in [0, 1) from seed and text: the same conversation always gets the same draw. */
export function demoDraw(seed: number, text: string): number {
  const digest = createHash("sha256").update(`${seed}\u0000${text}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/** The order the conversation is about; the longest matching title wins so no title shadows another. */
export function findDemoOrder(text: string, orders: readonly DemoOrder[] = demoOrders) {
  let found: DemoOrder | undefined;
  for (const order of orders) {
    if (text.includes(order.title) && (!found || order.title.length > found.title.length)) {
      found = order;
    }
  }
  return found;
}

function checkRate(name: string, value: number): number {
  if (!(value >= 0 && value <= 1)) {
    throw new DemoPolicyError(`${name} must be between 0 and 1, got ${value}`);
  }
  return value;
}

function firstUserText(request: ChatRequest): string {
  const first = request.messages.find((m) => m.role === "user");
  return first ? messagesText({ ...request, messages: [first] }, ["user"]) : "";
}

/**
 * Broken patches take the bottom of [0, 1), give-ups the next slice, so each rate is the exact share
 * it names; if the two add up to more than 1, give-ups get only what is left.
 */
export function demoDecision(
  request: ChatRequest,
  options: Required<DemoPolicyOptions>,
): DemoDecision {
  const u = demoDraw(options.seed, firstUserText(request));
  const userText = messagesText(request, ["user"]).toLowerCase();
  if (userText.includes(FEEDBACK_MARKER))
    return u < options.fixOnFeedbackRate ? "correct" : "broken";
  if (u < options.brokenPatchRate) return "broken";
  if (u < options.brokenPatchRate + options.giveUpRate) return "give_up";
  return "correct";
}

let testCommand: string | undefined;

/**
 * The sample repository's test script itself, as its test gate runs it: through `npm test` every
 * run paid npm's start-up (more CPU than the tests) for the same tests and report.
 */
export function sampleTestCommand(): string {
  testCommand ??= demoTestCommand(resolveTsxLoader());
  return testCommand;
}

function writeCalls(files: Readonly<Record<string, string>>): PolicyReply {
  return {
    toolCalls: Object.entries(files).map(([path, content]) => ({
      name: "write_file",
      arguments: { path, content },
    })),
  };
}

function planReply(order: DemoOrder, decision: DemoDecision, turn: number): PolicyReply {
  if (turn === 0) return { toolCalls: [{ name: "list_files", arguments: {} }] };
  if (decision === "give_up") return { content: GIVE_UP_REPLY };
  if (turn === 1) return writeCalls(decision === "correct" ? order.files : order.brokenFiles);
  if (turn === 2)
    return { toolCalls: [{ name: "run_command", arguments: { command: sampleTestCommand() } }] };
  return { content: `Implemented ${order.key} with tests.` };
}

/** Plays the agent's model for the demo backlog: look around, write the patch, run the tests, report. */
export function demoPolicy(options: DemoPolicyOptions = {}): Policy {
  const resolved: Required<DemoPolicyOptions> = {
    seed: options.seed ?? 1,
    brokenPatchRate: checkRate("brokenPatchRate", options.brokenPatchRate ?? 0.2),
    giveUpRate: checkRate("giveUpRate", options.giveUpRate ?? 0.05),
    fixOnFeedbackRate: checkRate("fixOnFeedbackRate", options.fixOnFeedbackRate ?? 0.9),
  };
  return (request) => {
    const order = findDemoOrder(messagesText(request, ["system", "developer", "user"]));
    if (!order) return { content: UNKNOWN_ORDER_REPLY };
    return planReply(order, demoDecision(request, resolved), conversationTurn(request));
  };
}
