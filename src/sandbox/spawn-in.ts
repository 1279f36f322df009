import path from "node:path";
import { SandboxError } from "./errors.ts";
import type { RunSandbox } from "./types.ts";

/** A program to start inside a run's sandbox (the shape agent drivers describe their CLI with). */
export interface SandboxedProgram {
  file: string;
  args: string[];
  /** The program's environment, layered over the sandbox's scrubbed base. */
  env: Record<string, string>;
  cwd: string;
  /** The program's own scratch folders (its private home), writable inside. */
  writablePaths: string[];
  /** The program's own install (its package and native binaries), visible read-only inside. */
  readOnlyPaths?: string[];
  /** How its violations name it (default: the program's file name). */
  label?: string;
}

export interface SandboxedProgramControl {
  timeoutMs: number;
  killGraceMs: number;
  signal: AbortSignal;
  onStdout(chunk: Buffer): void;
  /**
   * The program's stderr, kept apart from its stdout (an agent CLI's stdout is a stream of JSON
   * events). Without it, stderr is interleaved with stdout in onStdout.
   */
  onStderr?(chunk: Buffer): void;
}

export type SandboxedProgramEnding =
  | {
      kind: "exited";
      exitCode: number | null;
      signal: NodeJS.Signals | null;
      timedOut: boolean;
      aborted: boolean;
    }
  | { kind: "spawn_error"; error: NodeJS.ErrnoException };

/**
 * Runs a long-lived program (an agent CLI) in a run's sandbox, streaming its output: the adapter
 * an agent driver's spawner uses so that the agent process itself, not only its commands, is
 * inside the walls. Every process it starts stays inside; the wall-time limit and an abort kill
 * them all. Its blocked attempts reach the sandbox's event sink like any command's: its whole
 * output is scanned (the messages of the commands it runs show there), its command line is not
 * (that is a prompt, not a shell command).
 */
export async function spawnInSandbox(
  sandbox: RunSandbox,
  program: SandboxedProgram,
  control: SandboxedProgramControl,
): Promise<SandboxedProgramEnding> {
  const command = ["exec", program.file, ...program.args].map(shellQuote).join(" ");
  try {
    const result = await sandbox.exec({
      command,
      cwd: program.cwd,
      env: program.env,
      writablePaths: program.writablePaths,
      readOnlyPaths: program.readOnlyPaths ?? [],
      label: program.label ?? path.basename(program.file),
      scanCommandText: false,
      timeoutMs: control.timeoutMs,
      killGraceMs: control.killGraceMs,
      signal: control.signal,
      onOutput: (chunk) => control.onStdout(chunk),
      ...(control.onStderr ? { onStderr: (chunk: Buffer) => control.onStderr?.(chunk) } : {}),
      maxOutputBytes: 64 * 1024,
    });
    if (result.exitCode === 127 && /not found|No such file or directory/.test(result.output)) {
      const error: NodeJS.ErrnoException = new Error(`${program.file} not found in the sandbox`);
      error.code = "ENOENT";
      return { kind: "spawn_error", error };
    }
    return {
      kind: "exited",
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut: result.timedOut,
      aborted: result.aborted,
    };
  } catch (error) {
    if (!(error instanceof SandboxError)) throw error;
    const failure: NodeJS.ErrnoException = new Error(`${error.detail}\nhow to fix: ${error.hint}`, {
      cause: error,
    });
    failure.code = error.code;
    return { kind: "spawn_error", error: failure };
  }
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
