import {
  type CommandOptions,
  type CommandResult,
  runCommand,
  type SandboxBackend,
  SandboxError,
} from "../../sandbox/index.ts";
import { git } from "../../workspace/git.ts";
import type { Workspaces } from "../../workspace/index.ts";
import { PerpetualSourceError } from "./errors.ts";

/** What a source needs to run its command on the landing branch's tip. */
export interface CheckoutParts {
  /** Makes the checkouts: a worktree of main's tip, as a run's workspace is made. */
  workspaces: Workspaces;
  /** Runs the commands in a sandbox over the checkout, as the gates' commands are run. */
  sandbox?: SandboxBackend;
  /** Stops a command under way (the line is shutting down). */
  signal?: AbortSignal;
}

export interface Checkout {
  path: string;
  /** The files committed at the checkout's commit (paths relative to it). */
  files: Set<string>;
  /** Runs `command` there; see runChecked. */
  run(command: string, timeoutMs: number): Promise<CheckedRun>;
}

export interface CheckedRun {
  exitCode: number | null;
  /** The command's standard output alone: what reports are read from. */
  stdout: string;
  /** The end of its standard error, for error messages. */
  stderrTail: string;
}

/** Most stdout a check may write; a lint report of a large repository fits many times over. */
const MAX_STDOUT_BYTES = 32 * 1024 * 1024;
const STDERR_TAIL_CHARS = 2_000;

/**
 * Gives `use` a fresh checkout of the landing branch's tip (never the repository's own working
 * tree, which a person may be editing) and removes it afterwards, whatever happened. The name
 * carries the pid: workers on one repository do not share a checkout; a crash's leftover is removed
 * by the next start-up's prune like any dead run's worktree.
 */
export async function withCheckout<T>(
  parts: CheckoutParts,
  source: string,
  use: (checkout: Checkout) => Promise<T>,
): Promise<T> {
  const ws = await parts.workspaces.create(`perpetual-${source}-${process.pid}`);
  try {
    const listed = await git(["ls-files", "-z"], { cwd: ws.path });
    const files = new Set(listed.stdout.split("\0").filter(Boolean));
    return await use({
      path: ws.path,
      files,
      run: (command, timeoutMs) =>
        runChecked(parts.sandbox, ws.path, command, timeoutMs, parts.signal),
    });
  } finally {
    await parts.workspaces.release(ws, { keep: false });
  }
}

/**
 * Runs a configured command line as it is (`bash -c`, nothing put into it) in `cwd` with a time
 * limit, in the sandbox when there is one. Stdout is kept apart from stderr: JSON reports are
 * read from it. A command that does not start or times out is a PerpetualSourceError; how it
 * exited is for the caller to judge (linters exit 1 when they find something).
 */
export async function runChecked(
  sandbox: SandboxBackend | undefined,
  cwd: string,
  command: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<CheckedRun> {
  const stdout: Buffer[] = [];
  let stdoutBytes = 0;
  let stderr = "";
  const options: CommandOptions = {
    command,
    cwd,
    timeoutMs,
    // The capture (interleaved, cut in the middle) is not read: stdout and stderr are kept here.
    maxOutputBytes: 64 * 1024,
    ...(signal ? { signal } : {}),
    onOutput: (chunk) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes <= MAX_STDOUT_BYTES) stdout.push(chunk);
    },
    onStderr: (chunk) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-STDERR_TAIL_CHARS);
    },
  };
  let result: CommandResult;
  try {
    result = await runIn(sandbox, options);
  } catch (error) {
    if (!(error instanceof SandboxError)) throw error;
    throw new PerpetualSourceError(
      "source_command_could_not_start",
      `\`${command}\` could not start: ${error.detail}`,
      error.hint,
      { cause: error },
    );
  }
  if (result.aborted) throw new Error(`\`${command}\` was stopped: the line is shutting down`);
  if (result.timedOut) {
    throw new PerpetualSourceError(
      "source_command_timed_out",
      `\`${command}\` did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`,
      "raise its timeout_seconds in [perpetual] of nightshift.toml, or make the command faster",
      { details: { stderr } },
    );
  }
  if (stdoutBytes > MAX_STDOUT_BYTES) {
    throw new PerpetualSourceError(
      "source_output_unreadable",
      `\`${command}\` wrote more than ${MAX_STDOUT_BYTES / 1024 / 1024} MiB to stdout`,
      "narrow the command to fewer files or rules, or have it report errors only",
    );
  }
  return {
    exitCode: result.exitCode,
    stdout: Buffer.concat(stdout).toString("utf8"),
    stderrTail: stderr,
  };
}

async function runIn(
  sandbox: SandboxBackend | undefined,
  options: CommandOptions,
): Promise<CommandResult> {
  if (!sandbox) return runCommand(options);
  const box = await sandbox.create({ workspacePath: options.cwd });
  try {
    return await box.exec(options);
  } finally {
    await box.dispose();
  }
}
