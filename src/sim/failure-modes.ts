import type { ChatRequest, ChatToolDefinition } from "../protocols/index.ts";
import { pickBySlices, ratesProblem, seededDraw } from "./draw.ts";
import { SimulatorError } from "./errors.ts";
import {
  conversationTurn,
  messagesText,
  type Policy,
  type PolicyReply,
  type PolicyToolCall,
} from "./policy.ts";

/**
 * Ways a model misbehaves that an agent factory must survive:
 * - loop: from its second turn on, the conversation repeats its latest tool call forever;
 * - escape: a tool call that reads host secrets or leaves the workspace (never a network address);
 * - stall: the reply comes after `stallMs`;
 * - huge_output: a reply of `hugeOutputBytes` of text;
 * - broken_patch: the inner policy's file writes, corrupted so they no longer parse.
 */
export const FAILURE_MODES = ["loop", "escape", "stall", "huge_output", "broken_patch"] as const;
export type FailureMode = (typeof FAILURE_MODES)[number];

export interface FailureModeOptions {
  seed?: number;
  /** Probability of each mode: loop per conversation, the others per turn (exact shares of one draw). */
  rates: Partial<Record<FailureMode, number>>;
  /** How long a stall lasts (default 120 s). */
  stallMs?: number;
  /** Size of a huge output (default 2 MiB). */
  hugeOutputBytes?: number;
  /** Called whenever a mode changes a reply: lets tests and logs see what was injected. */
  onFailure?: (mode: FailureMode, request: ChatRequest) => void;
}

/** The escape attempts, by the kind of tool they need. Local paths and commands only. */
export const ESCAPE_READS = [
  "~/.ssh/id_rsa",
  "../../other-run/notes.md",
  "/etc/shadow",
  "~/.aws/credentials",
] as const;
export const ESCAPE_COMMANDS = [
  "cat /proc/self/environ",
  "env",
  "cat ~/.ssh/id_rsa",
  "ls -la ../../",
] as const;

const HUGE_LINE = "All work and no play makes the model a dull agent. ";

// Tool names and argument names of the agents nightshift drives (built-in, Claude Code, Codex).
const READ_TOOLS = ["read_file", "Read", "view", "read"];
const READ_TOOL = /read|view|open|cat/i;
const COMMAND_TOOLS = ["run_command", "Bash", "exec_command", "shell"];
const COMMAND_TOOL = /bash|shell|command|exec|run/i;
const PATH_KEYS = ["path", "file_path", "filePath", "file", "filename"];
const COMMAND_KEYS = ["command", "cmd"];
const WRITE_KEYS = ["content", "contents", "file_text", "new_string", "newText"];

function firstUserText(request: ChatRequest): string {
  const first = request.messages.find((m) => m.role === "user");
  return first ? messagesText({ ...request, messages: [first] }, ["user"]) : "";
}

/** The property of a tool's JSON schema to put the value in: a known name, else its first string field. */
function argumentKey(tool: ChatToolDefinition | undefined, known: readonly string[]): string {
  const properties = (tool?.function.parameters?.properties ?? {}) as Record<
    string,
    { type?: unknown }
  >;
  const names = Object.keys(properties);
  return (
    known.find((k) => names.includes(k)) ??
    names.find((k) => properties[k]?.type === "string") ??
    known[0] ??
    "path"
  );
}

// Known names first: a loose pattern alone could pick e.g. a "TodoRead" over "Read".
function findTool(
  tools: readonly ChatToolDefinition[],
  names: readonly string[],
  pattern: RegExp,
): ChatToolDefinition | undefined {
  for (const name of names) {
    const tool = tools.find((t) => t.function.name === name);
    if (tool) return tool;
  }
  return tools.find((t) => pattern.test(t.function.name));
}

export function escapeCall(request: ChatRequest, u: number): PolicyToolCall {
  const tools = request.tools ?? [];
  const reader = findTool(tools, READ_TOOLS, READ_TOOL);
  const runner = findTool(tools, COMMAND_TOOLS, COMMAND_TOOL);
  // With both kinds (or neither: then the built-in agent's names are used) either attempt is drawn.
  const useRead = Boolean(reader) === Boolean(runner) ? u < 0.5 : Boolean(reader);
  const v = (u * 2) % 1;
  if (useRead) {
    const path = ESCAPE_READS[Math.floor(v * ESCAPE_READS.length)] ?? ESCAPE_READS[0];
    return {
      name: reader?.function.name ?? "read_file",
      arguments: { [argumentKey(reader, PATH_KEYS)]: path },
    };
  }
  const command = ESCAPE_COMMANDS[Math.floor(v * ESCAPE_COMMANDS.length)] ?? ESCAPE_COMMANDS[0];
  return {
    name: runner?.function.name ?? "run_command",
    arguments: { [argumentKey(runner, COMMAND_KEYS)]: command },
  };
}

/** The latest tool call the assistant made in this conversation, exactly as it was sent. */
export function latestToolCall(request: ChatRequest): PolicyToolCall | undefined {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i];
    if (message?.role !== "assistant") continue;
    const call = message.tool_calls?.[0];
    if (call) return { name: call.function.name, arguments: call.function.arguments };
  }
  return undefined;
}

/** Cuts a file body in half and leaves a conflict marker: no language parses that. */
function breakText(text: string): string {
  return `${text.slice(0, Math.floor(text.length / 2))}\n<<<<<<< broken patch (nightshift simulator)\n`;
}

function breakWrites(reply: PolicyReply): PolicyReply | undefined {
  let broke = false;
  const toolCalls = (reply.toolCalls ?? []).map((call) => {
    if (typeof call.arguments === "string") return call;
    const key = WRITE_KEYS.find(
      (k) => typeof (call.arguments as Record<string, unknown>)[k] === "string",
    );
    if (!key) return call;
    broke = true;
    return {
      ...call,
      arguments: { ...call.arguments, [key]: breakText(String(call.arguments[key])) },
    };
  });
  return broke ? { ...reply, toolCalls } : undefined;
}

export function hugeText(bytes: number): string {
  return HUGE_LINE.repeat(Math.ceil(bytes / HUGE_LINE.length)).slice(0, bytes);
}

/**
 * Wraps a policy with seeded failure modes. Draws depend on the seed, the conversation (its first
 * user message) and the turn, never on arrival order, so a run is reproducible under concurrency.
 * A mode that has nothing to act on (broken_patch on a reply that writes no file) leaves the reply be.
 */
export function withFailureModes(inner: Policy, options: FailureModeOptions): Policy {
  // The loop is drawn once per conversation, the other modes share one draw per turn.
  const { loop, ...perTurnRates } = options.rates;
  const problem = ratesProblem({ loop }) ?? ratesProblem(perTurnRates);
  if (problem) throw new SimulatorError("invalid_failure_modes", `failure mode ${problem}`);
  const seed = options.seed ?? 1;
  const stallMs = options.stallMs ?? 120_000;
  const hugeBytes = options.hugeOutputBytes ?? 2 * 1024 * 1024;
  const perTurn = FAILURE_MODES.filter((m) => m !== "loop");
  return async (request, ctx) => {
    const conversation = firstUserText(request);
    const turn = conversationTurn(request);
    const fired = (mode: FailureMode, reply: PolicyReply) => {
      options.onFailure?.(mode, request);
      return reply;
    };
    const looping = seededDraw(seed, "loop", conversation) < (options.rates.loop ?? 0);
    const previous = latestToolCall(request);
    if (looping && turn > 0 && previous) return fired("loop", { toolCalls: [previous] });
    const mode = pickBySlices(seededDraw(seed, "turn", conversation, turn), perTurn, perTurnRates);
    if (mode === "escape")
      return fired("escape", {
        toolCalls: [escapeCall(request, seededDraw(seed, "escape", conversation, turn))],
      });
    if (mode === "huge_output") return fired("huge_output", { content: hugeText(hugeBytes) });
    const reply = await inner(request, ctx);
    if (mode === "stall")
      return fired("stall", { ...reply, delayMs: (reply.delayMs ?? 0) + stallMs });
    if (mode === "broken_patch") {
      const broken = breakWrites(reply);
      if (broken) return fired("broken_patch", broken);
    }
    return reply;
  };
}
