import {
  type CommandOptions,
  type CommandResult,
  runCommand,
  type SandboxBackend,
  SandboxError,
} from "../sandbox/index.ts";
import { GateError } from "./errors.ts";
import type { Gate, GateContext, GateOutcome } from "./types.ts";

export interface CommandGateOptions {
  name: string;
  /** A bash command line, run with `bash -c` in the workspace. */
  command: string;
  timeoutMs?: number;
  maxOutputBytes?: number;
  /** How long a timed-out or aborted process group gets between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /**
   * Run the command in a sandbox of this backend (the candidate's code is as untrusted as the
   * agent that wrote it). Without one it runs unsandboxed, with only a scrubbed environment.
   */
  sandbox?: SandboxBackend;
  /** Host paths the gate's command may read (hidden tests), read-only and only for the gate. */
  hiddenPaths?: string[];
}

interface ResolvedOptions {
  name: string;
  command: string;
  timeoutMs: number;
  maxOutputBytes: number;
  killGraceMs: number;
  sandbox: SandboxBackend | undefined;
  hiddenPaths: string[];
}

/**
 * A gate that passes when its command exits 0 within its timeout. The process handling (process
 * group, kill on timeout/abort, capped interleaved output, scrubbed env) lives in sandbox/.
 */
export function createCommandGate(options: CommandGateOptions): Gate {
  const resolved = resolveOptions(options);
  return { name: resolved.name, run: (ctx) => runGate(resolved, ctx) };
}

export function createTestGate(options: Omit<CommandGateOptions, "name">): Gate {
  return createCommandGate({ ...options, name: "test" });
}

function resolveOptions(options: CommandGateOptions): ResolvedOptions {
  const resolved = {
    name: options.name,
    command: options.command,
    timeoutMs: options.timeoutMs ?? 600_000,
    maxOutputBytes: options.maxOutputBytes ?? 64 * 1024,
    killGraceMs: options.killGraceMs ?? 2_000,
    sandbox: options.sandbox,
    hiddenPaths: options.hiddenPaths ?? [],
  };
  const invalid = (what: string) =>
    new GateError(
      "invalid_gate_options",
      options.name,
      what,
      "fix the gate's entry in nightshift.toml",
    );
  if (!resolved.name.trim()) throw invalid("the gate has no name");
  if (!resolved.command.trim()) throw invalid("the gate has an empty command");
  for (const key of ["timeoutMs", "maxOutputBytes", "killGraceMs"] as const) {
    if (!Number.isFinite(resolved[key]) || resolved[key] <= 0) {
      throw invalid(`${key} must be a positive number, got ${resolved[key]}`);
    }
  }
  return resolved;
}

async function runGate(opts: ResolvedOptions, ctx: GateContext): Promise<GateOutcome> {
  if (ctx.signal?.aborted) {
    throw new GateError("gate_aborted", opts.name, "cancelled before it started", "nothing to fix");
  }
  const result = await runIn(opts, {
    command: opts.command,
    cwd: ctx.workspacePath,
    timeoutMs: opts.timeoutMs,
    maxOutputBytes: opts.maxOutputBytes,
    killGraceMs: opts.killGraceMs,
    env: ctx.env,
    signal: ctx.signal,
  }).catch((error: unknown) => {
    if (!(error instanceof SandboxError)) throw error;
    throw new GateError("gate_could_not_start", opts.name, error.detail, error.hint, {
      cause: error,
    });
  });
  if (result.aborted) {
    throw new GateError(
      "gate_aborted",
      opts.name,
      "cancelled before it finished; its processes were killed",
      "nothing to fix if the run was cancelled on purpose; otherwise check what aborted it",
    );
  }
  return {
    gate: opts.name,
    passed: !result.timedOut && result.exitCode === 0,
    exitCode: result.exitCode,
    output: result.output,
    durationMs: result.durationMs,
    timedOut: result.timedOut,
  };
}

/** The gate's command, in a sandbox of its own over the workspace when the gate has a backend. */
async function runIn(opts: ResolvedOptions, command: CommandOptions): Promise<CommandResult> {
  if (!opts.sandbox) return runCommand(command);
  const sandbox = await opts.sandbox.create({ workspacePath: command.cwd });
  try {
    return await sandbox.exec({ ...command, readOnlyPaths: opts.hiddenPaths });
  } finally {
    await sandbox.dispose();
  }
}
