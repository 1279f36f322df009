import { readFile } from "node:fs/promises";
import path from "node:path";
import { describeError, NightshiftError } from "../../errors/index.ts";
import { CappedOutput, scrubbedEnv } from "../../sandbox/index.ts";
import type { AgentDriver, AgentResult, AgentTask, ModelEndpoint } from "../driver.ts";
import type { AgentEvent, AgentEventSink, AgentStopReason } from "../events.ts";
import { workspaceChanges } from "./changes.ts";
import { type AgentCliSpec, type LocatedCli, locateCli } from "./detect.ts";
import { defaultHomesDir, makePrivateHome, type PrivateHome } from "./home.ts";
import { JsonLines, type OutputLine } from "./json-lines.ts";
import { type AgentSpawner, localSpawner, type SpawnEnding, sandboxSpawner } from "./spawn.ts";

/** Settings every CLI driver takes; the per-CLI ones live in each driver's own options. */
export interface CliDriverOptions {
  /** The program, instead of looking for the npm package and on PATH. */
  path?: string;
  /** Folders whose node_modules may hold the CLI's package (the factory's repository). */
  searchFrom?: string[];
  /** The longest one run may take, start to end; then the CLI and everything it started are killed. */
  wallTimeMs?: number;
  /** A file of extra instructions for every run, handed to the CLI its own way (CLAUDE.md, AGENTS.md). */
  instructionsFile?: string;
  /** Where private homes are made (default: the system temp dir). */
  homesDir?: string;
  /**
   * Starts the CLI. Default: inside the run's sandbox when the task has one (sandboxSpawner),
   * else directly on the host (localSpawner). Tests inject their own.
   */
  spawner?: AgentSpawner;
  killGraceMs?: number;
  /** Extra environment for the CLI on top of what the driver sets (tests use it for a proxy). */
  env?: Record<string, string>;
}

export interface CliRunContext {
  task: AgentTask;
  cli: LocatedCli;
  home: PrivateHome;
  /** The text of the factory's instructions file, if one is configured. */
  instructions: string | undefined;
}

/** How to start one CLI for one run: its arguments and environment (on top of the private home). */
export interface PreparedRun {
  args: string[];
  env: Record<string, string>;
}

/** What a parser does with a CLI's events. */
export interface ParserOutput {
  emit(event: AgentEvent): void;
  /** One model round-trip happened (counted against max_steps). */
  turn(): void;
}

/** How the CLI itself said the run ended. */
export interface CliVerdict {
  reason: AgentStopReason;
  summary: string;
}

/** Turns one CLI's JSON events into common events; it must accept any object without throwing. */
export interface CliOutputParser {
  accept(event: Record<string, unknown>, out: ParserOutput): void;
  verdict(): CliVerdict | undefined;
}

/** The part of a driver that knows one CLI: its command line and its output format. */
export interface CliAdapter {
  readonly spec: AgentCliSpec;
  prepare(context: CliRunContext): Promise<PreparedRun>;
  parser(task: AgentTask): CliOutputParser;
}

const DEFAULT_WALL_TIME_MS = 60 * 60 * 1000;
const DEFAULT_KILL_GRACE_MS = 3_000;
/** Garbage lines reported one by one; beyond this only the count grows. */
const GARBAGE_EVENTS = 10;
const STDERR_TAIL_BYTES = 16 * 1024;

/**
 * A coding agent CLI as a driver: finds the program, gives it a private home and the run's
 * gateway key, starts it in the workspace through the spawner, and turns its JSON lines into the
 * common events. Whatever the CLI does (crash, hang, garbage, non-zero exit) ends the run with a
 * reason a person can act on; `run` itself never throws.
 */
export class CliAgentDriver implements AgentDriver {
  readonly name: string;

  constructor(
    private readonly adapter: CliAdapter,
    private readonly options: CliDriverOptions = {},
  ) {
    this.name = adapter.spec.driver;
  }

  /** Finds the CLI and checks the instructions file: the line calls this before taking work. */
  async preflight(): Promise<LocatedCli> {
    const cli = await this.locate();
    await this.readInstructions();
    return cli;
  }

  async run(task: AgentTask, emit: AgentEventSink, signal: AbortSignal): Promise<AgentResult> {
    const usage = { inputTokens: 0, outputTokens: 0 };
    const sink: AgentEventSink = (event) => {
      if (event.kind === "usage") {
        usage.inputTokens += event.inputTokens;
        usage.outputTokens += event.outputTokens;
      }
      emit(event);
    };
    const end = (reason: AgentStopReason, summary: string): AgentResult => {
      if (reason === "error") emit({ kind: "error", message: summary });
      return { reason, summary, ...usage };
    };
    let cli: LocatedCli;
    let instructions: string | undefined;
    let endpoint: ModelEndpoint;
    try {
      cli = await this.locate();
      instructions = await this.readInstructions();
      endpoint = endpointInside(task);
    } catch (error) {
      return end("error", describeError(error));
    }
    if (signal.aborted) return end("aborted", "the run was cancelled before the agent started");
    const home = await makePrivateHome(this.options.homesDir ?? defaultHomesDir(), this.name);
    try {
      const context = { task: { ...task, endpoint }, cli, home, instructions };
      return await this.runIn(home, context, sink, signal, end);
    } catch (error) {
      // A bug of ours (or a failing disk) still ends the run with a reason, not a crashed line.
      return end("error", `the ${this.name} driver failed: ${describeError(error)}`);
    } finally {
      await home.remove().catch(() => undefined);
    }
  }

  private async runIn(
    home: PrivateHome,
    context: CliRunContext,
    emit: AgentEventSink,
    signal: AbortSignal,
    end: (reason: AgentStopReason, summary: string) => AgentResult,
  ): Promise<AgentResult> {
    const { task, cli } = context;
    const prepared = await this.adapter.prepare(context);
    const parser = this.adapter.parser(task);
    const stopForSteps = new AbortController();
    let turns = 0;
    let events = 0;
    let garbage = 0;
    let firstGarbage: string | undefined;
    const out: ParserOutput = {
      emit,
      turn: () => {
        turns++;
        // The CLIs that take a turn limit stop themselves; this is the backstop for the rest.
        if (turns > task.maxSteps) stopForSteps.abort();
      },
    };
    const onLine = (line: OutputLine) => {
      if (line.kind === "event") {
        events++;
        try {
          parser.accept(line.value, out);
        } catch (error) {
          emit({
            kind: "error",
            message: `could not read a ${this.name} event: ${describeError(error)}`,
          });
        }
        return;
      }
      garbage++;
      const what =
        line.kind === "garbage"
          ? `not a JSON event: ${line.preview}`
          : `a ${line.bytes}-byte line, over the limit, skipped`;
      firstGarbage ??= what;
      if (garbage <= GARBAGE_EVENTS)
        emit({ kind: "error", message: `${this.name} printed ${what}` });
    };
    const lines = new JsonLines(onLine);
    const stderr = new CappedOutput(STDERR_TAIL_BYTES);
    const wallTimeMs = this.options.wallTimeMs ?? DEFAULT_WALL_TIME_MS;
    const spawner =
      this.options.spawner ?? (task.sandbox ? sandboxSpawner(task.sandbox) : localSpawner);
    const ending = await spawner(
      {
        file: cli.file,
        args: prepared.args,
        env: { ...scrubbedEnv(), ...home.env, ...prepared.env, ...this.options.env },
        cwd: task.workspacePath,
        writablePaths: [home.root],
        label: `${this.adapter.spec.bin} (the ${this.name} agent)`,
      },
      {
        timeoutMs: wallTimeMs,
        killGraceMs: this.options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
        signal: AbortSignal.any([signal, stopForSteps.signal]),
        onStdout: (chunk) => lines.write(chunk),
        onStderr: (chunk) => stderr.write(chunk),
      },
    );
    lines.end();
    if (garbage > GARBAGE_EVENTS) {
      emit({
        kind: "error",
        message: `${this.name} printed ${garbage} lines that are not JSON events in all`,
      });
    }
    for (const change of await workspaceChanges(task.workspacePath).catch(() => [])) emit(change);

    const name = this.adapter.spec.displayName;
    if (ending.kind === "spawn_error") {
      // The prompt travels as one argument, and Linux caps one argument at 128 KiB.
      const why =
        ending.error.code === "E2BIG"
          ? `the prompt (${Buffer.byteLength(task.prompt)} bytes) is too long for a command-line argument`
          : (ending.error.code ?? ending.error.message);
      return end("error", `${name} could not be started (${cli.file}): ${why}`);
    }
    if (signal.aborted) return end("aborted", "the run was cancelled");
    if (stopForSteps.signal.aborted) {
      return end("max_steps", `stopped after ${task.maxSteps} model turns (the run's max_steps)`);
    }
    if (ending.timedOut) {
      return end(
        "aborted",
        `${name} was still running at the wall-time limit of ${formatDuration(wallTimeMs)} and was killed`,
      );
    }
    const verdict = parser.verdict();
    const exit = describeExit(ending);
    const diagnostics = [
      garbage > 0 ? `${garbage} output line(s) were not JSON events (first: ${firstGarbage})` : "",
      lastLines(stderr.toString()),
    ].filter(Boolean);
    if (verdict && (ending.exitCode === 0 || verdict.reason !== "completed")) {
      return end(verdict.reason, verdict.summary);
    }
    if (verdict) {
      return end("error", `${name} reported success but ${exit}${suffix(diagnostics)}`);
    }
    if (events === 0) {
      return end(
        "error",
        `${name} ${exit} without printing a single JSON event${suffix(diagnostics)}`,
      );
    }
    return end(
      "error",
      `${name} ${exit} without reporting how the run ended${suffix(diagnostics)}`,
    );
  }

  private locate(): Promise<LocatedCli> {
    return locateCli(this.adapter.spec, {
      ...(this.options.path ? { path: this.options.path } : {}),
      ...(this.options.searchFrom ? { searchFrom: this.options.searchFrom } : {}),
    });
  }

  private async readInstructions(): Promise<string | undefined> {
    const file = this.options.instructionsFile;
    if (!file) return undefined;
    try {
      return await readFile(file, "utf8");
    } catch (error) {
      throw new NightshiftError(
        "agent_instructions_missing",
        `cannot read the agent instructions file ${path.resolve(file)}: ${(error as NodeJS.ErrnoException).code ?? describeError(error)}`,
        { hint: "fix or remove [agent] instructions_file in nightshift.toml" },
      );
    }
  }
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/**
 * The model endpoint as the agent must be given it. Outside a sandbox (or with backend "none"):
 * as it is. Inside one, the only way out is the relay the sandbox keeps on 127.0.0.1 at the
 * gateway's port, so the endpoint has to be the gateway the sandbox relays to, on 127.0.0.1
 * (`localhost` could resolve to ::1 inside, where nothing listens).
 */
export function endpointInside(task: AgentTask): ModelEndpoint {
  const sandbox = task.sandbox;
  if (!sandbox || sandbox.backend === "none") return task.endpoint;
  const relayed = sandbox.gatewayEnv.NIGHTSHIFT_GATEWAY_URL;
  const hint = "open the run's sandbox with the run's gateway endpoint (SandboxSpec.gateway)";
  if (!relayed) {
    throw new NightshiftError(
      "agent_gateway_unreachable",
      "the run's sandbox has no gateway relay, so the agent inside it could reach no model",
      { hint },
    );
  }
  const wanted = new URL(task.endpoint.baseURL);
  const relay = new URL(relayed);
  if (!LOOPBACK_HOSTS.has(wanted.hostname) || portOf(wanted) !== portOf(relay)) {
    throw new NightshiftError(
      "agent_gateway_unreachable",
      `the agent's model endpoint ${task.endpoint.baseURL} is not reachable from the run's sandbox, which relays only to ${relayed}`,
      { hint },
    );
  }
  if (wanted.hostname === "127.0.0.1") return task.endpoint;
  wanted.hostname = "127.0.0.1";
  const baseURL = task.endpoint.baseURL.endsWith("/")
    ? wanted.href
    : wanted.href.replace(/\/$/, "");
  return { ...task.endpoint, baseURL };
}

function portOf(url: URL): string {
  return url.port || (url.protocol === "https:" ? "443" : "80");
}

function describeExit(ending: Extract<SpawnEnding, { kind: "exited" }>): string {
  if (ending.signal) return `was killed by ${ending.signal}`;
  return ending.exitCode === 0 ? "exited normally" : `exited with code ${ending.exitCode}`;
}

function suffix(parts: string[]): string {
  return parts.length > 0 ? `; ${parts.join("; ")}` : "";
}

/** The end of stderr, where a crashing program says why. */
function lastLines(text: string, count = 3): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length === 0) return "";
  const tail = lines.slice(-count).join(" | ");
  return `stderr: ${tail.length > 600 ? `…${tail.slice(-600)}` : tail}`;
}

function formatDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
