import { type ChildProcess, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { CappedOutput } from "./capped-output.ts";

/** How a supervised process is started. */
export interface Launch {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /**
   * Capture stderr too (into the same output). runCommand's wrapper already points stderr at
   * stdout; a sandbox launcher needs this for its own set-up errors.
   */
  captureStderr?: boolean;
  /** Told the process's pid (also its process group's id) once it started. */
  onSpawn?: (pid: number) => void;
}

export interface SuperviseOptions {
  timeoutMs: number;
  maxOutputBytes: number;
  killGraceMs: number;
  signal?: AbortSignal;
  /** Sees every output chunk as it arrives (agent drivers stream a CLI's events this way). */
  onOutput?: (chunk: Buffer) => void;
  /**
   * Sees every stderr chunk instead of onOutput (stderr is still captured into the output). For
   * launches whose stderr pipe carries the command's own stderr, kept apart from its stdout.
   */
  onStderr?: (chunk: Buffer) => void;
}

export type Exited = {
  kind: "exited";
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  output: string;
};
export type Ending = Exited | { kind: "spawn_error"; error: Error };

/** After the main process exits, how long to wait for its output pipe to drain. */
const DRAIN_MS = 250;

/**
 * Starts a process in its own process group and supervises it: a timeout or an abort kills the
 * whole group (SIGTERM, then SIGKILL after the grace), leftovers still running when the main
 * process exits are killed too, and output is captured capped. Shared by every backend, so they
 * all keep runCommand's contract.
 */
export function superviseProcess(launch: Launch, options: SuperviseOptions): Promise<Ending> {
  const stdio: ("ignore" | "pipe")[] = ["ignore", "pipe", launch.captureStderr ? "pipe" : "ignore"];
  const child = spawn(launch.file, launch.args, {
    cwd: launch.cwd,
    env: launch.env,
    detached: true, // its own process group, so one kill reaches every descendant
    stdio,
  });
  if (child.pid !== undefined) launch.onSpawn?.(child.pid);
  const output = new CappedOutput(options.maxOutputBytes);
  const onData = (chunk: Buffer) => {
    output.write(chunk);
    options.onOutput?.(chunk);
  };
  const onStderr = options.onStderr;
  child.stdout?.on("data", onData);
  child.stderr?.on(
    "data",
    onStderr
      ? (chunk: Buffer) => {
          output.write(chunk);
          onStderr(chunk);
        }
      : onData,
  );
  return new Promise((resolve) => {
    let timedOut = false;
    let aborted = false;
    let escalation: NodeJS.Timeout | undefined;
    const stop = () => {
      signalGroup(child, "SIGTERM");
      escalation ??= setTimeout(() => signalGroup(child, "SIGKILL"), options.killGraceMs);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, options.timeoutMs);
    const onAbort = () => {
      aborted = true;
      stop();
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      clearTimeout(escalation);
      options.signal?.removeEventListener("abort", onAbort);
    };
    child.once("error", (error) => {
      cleanup();
      resolve({ kind: "spawn_error", error });
    });
    child.once("exit", (code, exitSignal) => {
      cleanup();
      // Leftovers (servers, watchers the command backgrounded) must not outlive the command.
      signalGroup(child, "SIGKILL");
      void Promise.all([drained(child.stdout), drained(child.stderr)]).then(() =>
        resolve({
          kind: "exited",
          code,
          signal: exitSignal,
          timedOut,
          aborted,
          output: output.toString(),
        }),
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

/** Waits for a pipe to close, but not forever: an escaped process may hold it open. */
function drained(stream: Readable | null | undefined): Promise<void> {
  if (!stream || stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stream.destroy();
      resolve();
    }, DRAIN_MS);
    stream.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export function endingNote(ending: Exited, timeoutMs: number): string {
  if (ending.timedOut) {
    return `\n[nightshift: timed out after ${timeoutMs} ms; the whole process group was killed]\n`;
  }
  if (ending.aborted) return "\n[nightshift: aborted; the whole process group was killed]\n";
  if (ending.signal) return `\n[nightshift: the command was killed by ${ending.signal}]\n`;
  return "";
}
