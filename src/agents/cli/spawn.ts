import { type ChildProcess, spawn } from "node:child_process";
import { realpath } from "node:fs/promises";
import path from "node:path";
import {
  type RunSandbox,
  type SandboxedProgramEnding,
  spawnInSandbox,
} from "../../sandbox/index.ts";

/** One agent CLI invocation, fully described, so a sandbox can wrap it without knowing the agent. */
export interface AgentCommand {
  /** Absolute path of the program (resolved by detection). */
  file: string;
  args: string[];
  /** The complete environment: nothing is inherited from nightshift's own process. */
  env: Record<string, string>;
  /** The run's workspace. */
  cwd: string;
  /**
   * Host paths the CLI must be able to write besides its workspace: its private home (config,
   * session files, temp). A sandbox that wraps the command has to make these writable.
   */
  writablePaths: string[];
  /** What the sandbox calls the program when it records its blocked attempts. */
  label?: string;
}

export interface SpawnControl {
  /** The process (group) is killed after this long: the run's wall-time limit. */
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs: number;
  signal: AbortSignal;
  onStdout(chunk: Buffer): void;
  /** Diagnostics only; a spawner that cannot separate the streams may send stderr to onStdout. */
  onStderr(chunk: Buffer): void;
}

/** How an agent process ended, on the host or in the sandbox: the same shape either way. */
export type SpawnEnding = SandboxedProgramEnding;

/**
 * Starts an agent command and resolves when it has ended. Injectable so that the sandbox can run
 * the same command inside its walls; the driver never calls child_process itself.
 */
export type AgentSpawner = (command: AgentCommand, control: SpawnControl) => Promise<SpawnEnding>;

/** After the main process exits, how long its pipes may still deliver buffered output. */
const DRAIN_MS = 500;

/**
 * Runs the command directly on the host, in its own process group with stdin closed (an agent
 * that waits for input must fail, not hang), and kills the whole group on timeout or abort:
 * agent CLIs start shells, language servers and test runners that would otherwise outlive them.
 */
export const localSpawner: AgentSpawner = (command, control) =>
  new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(command.file, command.args, {
        cwd: command.cwd,
        env: command.env,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (error) {
      resolve({ kind: "spawn_error", error: error as NodeJS.ErrnoException });
      return;
    }
    let timedOut = false;
    let aborted = false;
    let escalation: NodeJS.Timeout | undefined;
    const stop = () => {
      signalGroup(child, "SIGTERM");
      escalation ??= setTimeout(() => signalGroup(child, "SIGKILL"), control.killGraceMs);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, control.timeoutMs);
    const onAbort = () => {
      aborted = true;
      stop();
    };
    if (control.signal.aborted) onAbort();
    else control.signal.addEventListener("abort", onAbort, { once: true });

    child.stdout?.on("data", control.onStdout);
    child.stderr?.on("data", control.onStderr);
    const pipesClosed = Promise.all([closed(child.stdout), closed(child.stderr)]);

    let settled = false;
    const finish = (ending: SpawnEnding) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      control.signal.removeEventListener("abort", onAbort);
      // Whatever the agent left running in its group goes with it.
      signalGroup(child, "SIGKILL");
      if (escalation) clearTimeout(escalation);
      resolve(ending);
    };
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) finish({ kind: "spawn_error", error });
    });
    child.once("exit", (exitCode, signal) => {
      // A grandchild holding the pipes open must not keep the run alive forever.
      const drained = new Promise((r) => setTimeout(r, DRAIN_MS));
      void Promise.race([pipesClosed, drained]).then(() =>
        finish({ kind: "exited", exitCode, signal, timedOut, aborted }),
      );
    });
  });

function closed(stream: NodeJS.ReadableStream | null): Promise<void> {
  if (!stream) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once("close", () => resolve());
    stream.once("error", () => resolve());
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/**
 * Runs the command inside a run's sandbox (spawnInSandbox): the agent process and every shell,
 * test runner and server it starts are inside the walls, its private home is writable there,
 * stderr stays apart from the JSON events on stdout, and the wall-time limit or an abort kills
 * the whole sandbox. The program's own install (its npm package and the native binaries beside
 * it) is made visible read-only, wherever it lies.
 */
export function sandboxSpawner(sandbox: RunSandbox): AgentSpawner {
  return async (command, control) => {
    const file = await realpath(command.file).catch(() => command.file);
    return spawnInSandbox(
      sandbox,
      {
        file,
        args: command.args,
        env: command.env,
        cwd: command.cwd,
        writablePaths: command.writablePaths,
        readOnlyPaths: [installRoot(file)],
        label: command.label ?? path.basename(command.file),
      },
      {
        timeoutMs: control.timeoutMs,
        killGraceMs: control.killGraceMs,
        signal: control.signal,
        onStdout: control.onStdout,
        onStderr: control.onStderr,
      },
    );
  };
}

/**
 * Where a CLI is installed: the node_modules folder that holds its package (its platform binary
 * is a sibling package there), or the program's own folder.
 */
export function installRoot(file: string): string {
  const parts = file.split(path.sep);
  const at = parts.lastIndexOf("node_modules");
  return at > 0 ? parts.slice(0, at + 1).join(path.sep) : path.dirname(file);
}
