import { type ChildProcess, spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { CappedOutput } from "./capped-output.ts";
import { scrubbedEnv } from "./env.ts";
import { SandboxError } from "./errors.ts";

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

const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;
const DEFAULT_KILL_GRACE_MS = 2_000;

/** After the main process exits, how long to wait for its output pipe to drain. */
const DRAIN_MS = 250;

// The outer bash points stderr at the stdout pipe, so both streams interleave in one capture in
// true write order, then execs the user's command unchanged (same pid, same process group).
const WRAPPER = 'exec 2>&1; exec bash -c "$1"';

/**
 * Runs a shell command in its own process group, so a timeout or an abort kills everything it
 * started (test runners love to leave children behind), not just the shell; leftovers still running
 * when the shell exits are killed too. The environment is scrubbed to an allow-list.
 *
 * Never throws for how the command ended (failure, timeout, abort are in the result); throws
 * SandboxError only when the command could not start at all.
 * This is the unsandboxed backend; isolation backends wrap the same contract.
 */
export async function runCommand(options: CommandOptions): Promise<CommandResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;

  const info = await stat(options.cwd).catch(() => null);
  if (!info?.isDirectory()) {
    throw new SandboxError(
      "command_could_not_start",
      `working directory ${options.cwd} is not a directory`,
      "the directory was removed before the command ran; check workspace release and pruning",
    );
  }
  if (options.signal?.aborted) return notStarted(elapsed());

  const child = spawn("bash", ["-c", WRAPPER, "nightshift-command", options.command], {
    cwd: options.cwd,
    env: scrubbedEnv(options.env),
    detached: true, // its own process group, so one kill reaches every descendant
    stdio: ["ignore", "pipe", "ignore"],
  });
  const output = new CappedOutput(maxOutputBytes);
  child.stdout?.on("data", (chunk: Buffer) => output.write(chunk));
  const ending = await superviseUntilExit(child, options.timeoutMs, killGraceMs, options.signal);
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
    output: output.toString() + endingNote(ending, options.timeoutMs),
    timedOut: ending.timedOut,
    aborted: ending.aborted,
    durationMs: elapsed(),
  };
}

function notStarted(durationMs: number): CommandResult {
  return {
    exitCode: null,
    signal: null,
    output: "",
    timedOut: false,
    aborted: true,
    durationMs,
  };
}

type Exited = {
  kind: "exited";
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
};
type Ending = Exited | { kind: "spawn_error"; error: Error };

function superviseUntilExit(
  child: ChildProcess,
  timeoutMs: number,
  killGraceMs: number,
  signal: AbortSignal | undefined,
): Promise<Ending> {
  return new Promise((resolve) => {
    let timedOut = false;
    let aborted = false;
    let escalation: NodeJS.Timeout | undefined;
    const stop = () => {
      signalGroup(child, "SIGTERM");
      escalation ??= setTimeout(() => signalGroup(child, "SIGKILL"), killGraceMs);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, timeoutMs);
    const onAbort = () => {
      aborted = true;
      stop();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      clearTimeout(escalation);
      signal?.removeEventListener("abort", onAbort);
    };
    child.once("error", (error) => {
      cleanup();
      resolve({ kind: "spawn_error", error });
    });
    child.once("exit", (code, exitSignal) => {
      cleanup();
      // Leftovers (servers, watchers the command backgrounded) must not outlive the command.
      signalGroup(child, "SIGKILL");
      void drained(child).then(() =>
        resolve({ kind: "exited", code, signal: exitSignal, timedOut, aborted }),
      );
    });
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Waits for the output pipe to close, but not forever: an escaped process may hold it open. */
function drained(child: ChildProcess): Promise<void> {
  const stdout = child.stdout;
  if (!stdout || stdout.readableEnded || stdout.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stdout.destroy();
      resolve();
    }, DRAIN_MS);
    stdout.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function endingNote(ending: Exited, timeoutMs: number): string {
  if (ending.timedOut) {
    return `\n[nightshift: timed out after ${timeoutMs} ms; the whole process group was killed]\n`;
  }
  if (ending.aborted) return "\n[nightshift: aborted; the whole process group was killed]\n";
  if (ending.signal) return `\n[nightshift: the command was killed by ${ending.signal}]\n`;
  return "";
}
