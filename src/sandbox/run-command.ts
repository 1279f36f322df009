import { stat } from "node:fs/promises";
import { scrubbedEnv } from "./env.ts";
import { SandboxError } from "./errors.ts";
import { endingNote, superviseProcess } from "./supervise.ts";

export interface CommandOptions {
  /** A bash command line, run with `bash -c` in `cwd`. */
  command: string;
  cwd: string;
  timeoutMs: number;
  /** Output beyond this is cut from the middle (short head, long tail). Default 64 KiB. */
  maxOutputBytes?: number;
  /** Time a timed-out or aborted process group gets between SIGTERM and SIGKILL. Default 2 s. */
  killGraceMs?: number;
  /** Extra variables on top of the scrubbed base environment (see scrubbedEnv). */
  env?: Record<string, string>;
  signal?: AbortSignal;
  /** Sees every output chunk as it arrives, before capping. */
  onOutput?: (chunk: Buffer) => void;
  /**
   * Keeps the command's stderr apart: its chunks come here instead of to onOutput (the capture
   * still holds both). For programs whose stdout is a machine-readable stream (agent CLIs).
   */
  onStderr?: (chunk: Buffer) => void;
}

export interface CommandResult {
  /** null when the command was ended by a signal (timeout, abort, or otherwise). */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr interleaved in write order, capped, plus a note if it was killed. */
  output: string;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;
export const DEFAULT_KILL_GRACE_MS = 2_000;

// The outer bash points stderr at the stdout pipe, so both streams interleave in one capture in
// true write order, then execs the user's command unchanged (same pid, same process group).
const WRAPPER = 'exec 2>&1; exec bash -c "$1"';
const WRAPPER_APART = 'exec bash -c "$1"';

/**
 * Runs a shell command in its own process group, so a timeout or an abort kills everything it
 * started (test runners love to leave children behind), not just the shell; leftovers still running
 * when the shell exits are killed too. The environment is scrubbed to an allow-list.
 *
 * Never throws for how the command ended (failure, timeout, abort are in the result); throws
 * SandboxError only when the command could not start at all.
 * This is the unsandboxed engine (the `none` backend); isolation backends keep the same contract.
 */
export async function runCommand(options: CommandOptions): Promise<CommandResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  await assertDirectory(options.cwd);
  if (options.signal?.aborted) return notStarted(elapsed());
  const ending = await superviseProcess(
    {
      file: "bash",
      args: [
        "-c",
        options.onStderr ? WRAPPER_APART : WRAPPER,
        "nightshift-command",
        options.command,
      ],
      cwd: options.cwd,
      env: scrubbedEnv(options.env),
      ...(options.onStderr ? { captureStderr: true } : {}),
    },
    supervision(options),
  );
  if (ending.kind === "spawn_error") {
    throw new SandboxError(
      "command_could_not_start",
      `could not start bash: ${ending.error.message}`,
      "make sure bash is installed and on PATH",
      { cause: ending.error },
    );
  }
  return {
    exitCode: ending.code,
    signal: ending.signal,
    output: ending.output + endingNote(ending, options.timeoutMs),
    timedOut: ending.timedOut,
    aborted: ending.aborted,
    durationMs: elapsed(),
  };
}

export function supervision(options: CommandOptions) {
  return {
    timeoutMs: options.timeoutMs,
    maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
    killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    ...(options.onStderr ? { onStderr: options.onStderr } : {}),
  };
}

export async function assertDirectory(cwd: string): Promise<void> {
  const info = await stat(cwd).catch(() => null);
  if (!info?.isDirectory()) {
    throw new SandboxError(
      "command_could_not_start",
      `working directory ${cwd} is not a directory`,
      "the directory was removed before the command ran; check workspace release and pruning",
    );
  }
}

export function notStarted(durationMs: number): CommandResult {
  return {
    exitCode: null,
    signal: null,
    output: "",
    timedOut: false,
    aborted: true,
    durationMs,
  };
}
