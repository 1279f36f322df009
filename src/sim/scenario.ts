import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { NightshiftError } from "../errors/index.ts";
import { type ChatRequest, contentText, formatPath } from "../protocols/index.ts";
import { SimulatorError } from "./errors.ts";
import { FAULT_KINDS, type FaultSpec } from "./faults.ts";
import { conversationTurn, messagesText, type Policy, type PolicyReply } from "./policy.ts";

/** A scenario file that cannot be read or does not follow the format; the message names step and field. */
export class ScenarioError extends NightshiftError {
  constructor(message: string) {
    super("invalid_scenario", message);
    this.name = "ScenarioError";
  }
}

const SERVER_STATUSES = [500, 502, 503, 504, 529] as const;

// Shorthands (`fault: 429`, `fault: stall`) become the object form first, so one schema reports
// problems; a value that fits no shorthand falls through and gets the object's error.
function faultShorthand(value: unknown): unknown {
  if (value === 429) return { kind: "rate_limit" };
  if (typeof value === "number" && (SERVER_STATUSES as readonly number[]).includes(value)) {
    return { kind: "server_error", status: value };
  }
  return typeof value === "string" ? { kind: value } : value;
}

const faultSchema = z.preprocess(
  faultShorthand,
  z.strictObject(
    {
      kind: z.enum(FAULT_KINDS),
      retry_after_seconds: z.number().min(0).optional(),
      status: z.union(SERVER_STATUSES.map((s) => z.literal(s))).optional(),
      after_events: z.int().min(0).optional(),
      /** With a reply: how many requests reaching this step get the fault before the reply is served. */
      times: z.int().min(1).optional(),
    },
    {
      error: `must be 429, ${SERVER_STATUSES.join(", ")}, one of ${FAULT_KINDS.join(", ")}, or {kind, ...}`,
    },
  ),
);

const toolCallSchema = z.strictObject({
  name: z.string().min(1),
  arguments: z
    .union([z.record(z.string(), z.unknown()), z.string()], {
      error: "must be an object, or a string sent verbatim (e.g. malformed JSON)",
    })
    .optional(),
});

const replySchema = z.preprocess(
  (value) => (typeof value === "string" ? { content: value } : value),
  z
    .strictObject({
      content: z.string().optional(),
      tool_calls: z.array(toolCallSchema).optional(),
      delay_ms: z.number().min(0).optional(),
    })
    .refine((r) => r.content !== undefined || (r.tool_calls?.length ?? 0) > 0, {
      message: "a reply needs content or tool_calls",
    }),
);

const expectSchema = z.strictObject({
  model: z.string().optional(),
  last_user_contains: z.string().optional(),
  user_contains: z.string().optional(),
  system_contains: z.string().optional(),
  tool_result_contains: z.string().optional(),
  tools_include: z.array(z.string()).optional(),
});

const stepSchema = z
  .strictObject({
    name: z.string().optional(),
    expect: expectSchema.optional(),
    reply: replySchema.optional(),
    fault: faultSchema.optional(),
  })
  .refine((s) => s.reply !== undefined || s.fault !== undefined, {
    message: "a step needs a reply or a fault",
  });

const scenarioSchema = z.preprocess(
  // A bare list of steps is a scenario too.
  (value) => (Array.isArray(value) ? { steps: value } : value),
  z.strictObject(
    {
      name: z.string().optional(),
      description: z.string().optional(),
      steps: z.array(stepSchema).min(1),
    },
    { error: "a scenario is a list of steps or an object with `steps`" },
  ),
);

export type ScenarioExpectation = z.infer<typeof expectSchema>;

export interface ScenarioStep {
  name?: string;
  expect?: ScenarioExpectation;
  reply?: PolicyReply;
  fault?: FaultSpec;
  /** With a reply: requests at this step that get the fault first (default 1). */
  faultTimes: number;
}

export interface Scenario {
  name: string;
  steps: ScenarioStep[];
}

type RawStep = z.infer<typeof stepSchema>;

function toStep(raw: RawStep): ScenarioStep {
  const step: ScenarioStep = { faultTimes: raw.fault?.times ?? 1 };
  if (raw.name !== undefined) step.name = raw.name;
  if (raw.expect) step.expect = raw.expect;
  if (raw.reply) {
    step.reply = {
      ...(raw.reply.content !== undefined ? { content: raw.reply.content } : {}),
      ...(raw.reply.tool_calls
        ? {
            toolCalls: raw.reply.tool_calls.map((c) => ({
              name: c.name,
              arguments: c.arguments ?? {},
            })),
          }
        : {}),
      ...(raw.reply.delay_ms !== undefined ? { delayMs: raw.reply.delay_ms } : {}),
    };
  }
  if (raw.fault) {
    const { kind, retry_after_seconds, status, after_events } = raw.fault;
    step.fault = {
      kind,
      ...(retry_after_seconds !== undefined ? { retryAfterSeconds: retry_after_seconds } : {}),
      ...(status !== undefined ? { status } : {}),
      ...(after_events !== undefined ? { afterEvents: after_events } : {}),
    };
  }
  return step;
}

function issueLocation(path: readonly PropertyKey[]): string {
  const where = formatPath(path);
  return path[0] === "steps" && typeof path[1] === "number"
    ? `step ${path[1] + 1} (${where})`
    : where;
}

/** Validates an already-parsed scenario (e.g. from a test); throws ScenarioError naming step and field. */
export function scenarioFromValue(value: unknown, source = "scenario"): Scenario {
  const result = scenarioSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues
      .slice(0, 3)
      .map((issue) => `${issueLocation(issue.path)}: ${issue.message}`);
    throw new ScenarioError(`${source}: ${problems.join("; ")}`);
  }
  return { name: result.data.name ?? source, steps: result.data.steps.map(toStep) };
}

/** Parses scenario text; YAML is a superset of JSON, so this reads both. */
export function parseScenario(text: string, source = "scenario"): Scenario {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new ScenarioError(`${source}: not valid YAML or JSON: ${detail}`);
  }
  return scenarioFromValue(value, source);
}

export async function loadScenario(path: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new ScenarioError(`cannot read scenario file ${path}: ${detail}`);
  }
  return parseScenario(text, path);
}

function lastIndexOf(request: ChatRequest, role: string): number {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    if (request.messages[i]?.role === role) return i;
  }
  return -1;
}

function lastUserText(request: ChatRequest): string {
  return contentText(request.messages[lastIndexOf(request, "user")]?.content);
}

/** The tool results this request answers with: tool messages after the last assistant message. */
function latestToolResults(request: ChatRequest): string {
  return request.messages
    .slice(lastIndexOf(request, "assistant") + 1)
    .filter((m) => m.role === "tool")
    .map((m) => contentText(m.content))
    .join("\n");
}

function shown(text: string): string {
  if (text === "") return "nothing";
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

function contains(label: string, expected: string | undefined, seen: string): string | null {
  if (expected === undefined || seen.includes(expected)) return null;
  return `expected ${label} to contain ${JSON.stringify(expected)}, saw ${shown(seen)}`;
}

/** Every way the request misses the expectation, or an empty list. */
export function expectationMismatches(expect: ScenarioExpectation, request: ChatRequest): string[] {
  const problems: (string | null)[] = [
    expect.model !== undefined && expect.model !== request.model
      ? `expected model ${JSON.stringify(expect.model)}, saw ${JSON.stringify(request.model)}`
      : null,
    contains("the last user message", expect.last_user_contains, lastUserText(request)),
    contains("the user messages", expect.user_contains, messagesText(request, ["user"])),
    contains(
      "the system prompt",
      expect.system_contains,
      messagesText(request, ["system", "developer"]),
    ),
    contains("the latest tool results", expect.tool_result_contains, latestToolResults(request)),
  ];
  const offered = (request.tools ?? []).map((t) => t.function.name);
  const missing = (expect.tools_include ?? []).filter((name) => !offered.includes(name));
  if (missing.length > 0) {
    problems.push(
      `expected tools ${missing.join(", ")} to be offered, saw [${offered.join(", ")}]`,
    );
  }
  return problems.filter((p): p is string => p !== null);
}

/**
 * Plays a scenario: the conversation's turn picks the step (stateless, like scriptedPolicy, so
 * concurrent conversations each run it from the start). A request that misses the step's
 * expectation gets a 400 naming the step, what was expected and what was seen. A step with a fault
 * and a reply serves the fault to the first `faultTimes` requests reaching it (counted across the
 * simulator: the one piece of state, so that a client retrying the request can get past it).
 */
export function scenarioPolicy(scenario: Scenario): Policy {
  const faultsServed = new Map<number, number>();
  return (request) => {
    const turn = conversationTurn(request);
    const step = scenario.steps[turn];
    const name = JSON.stringify(scenario.name);
    const count = scenario.steps.length;
    if (!step) {
      throw new SimulatorError(
        "scenario_exhausted",
        `scenario ${name} has ${count} steps, but the conversation is at turn ${turn + 1}`,
      );
    }
    const label = `scenario ${name} step ${turn + 1} of ${count}`;
    const named = step.name ? `${label} (${JSON.stringify(step.name)})` : label;
    const problems = step.expect ? expectationMismatches(step.expect, request) : [];
    if (problems.length > 0) {
      throw new SimulatorError("scenario_mismatch", `${named}: ${problems.join("; ")}`, 400);
    }
    if (step.fault) {
      const served = faultsServed.get(turn) ?? 0;
      if (!step.reply || served < step.faultTimes) {
        faultsServed.set(turn, served + 1);
        return { fault: step.fault };
      }
    }
    return step.reply ?? {};
  };
}
