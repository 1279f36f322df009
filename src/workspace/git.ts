import { execFile } from "node:child_process";
import { GitError } from "./errors.ts";

export interface GitResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface GitOptions {
  cwd: string;
  /** Exit codes that are answers rather than failures (e.g. 1 for `merge-base --is-ancestor`). */
  okCodes?: number[];
  env?: Record<string, string>;
}

/**
 * Settings forced on every invocation so the user's config cannot change what we do: their hooks
 * must not run on agent commits (the gates are the checks), commit signing would prompt or fail
 * unattended, and auto-gc would add unpredictable pauses to a loop that runs for days.
 */
const FORCED_CONFIG = [
  "-c",
  "core.hooksPath=/dev/null",
  "-c",
  "commit.gpgSign=false",
  "-c",
  "tag.gpgSign=false",
  "-c",
  "gc.auto=0",
  "-c",
  "maintenance.auto=false",
  "-c",
  "advice.detachedHead=false",
];

/** Variables that would point git at some other repository than the one we name with cwd. */
const REPO_OVERRIDES = [
  "GIT_DIR",
  "GIT_WORK_TREE",
  "GIT_INDEX_FILE",
  "GIT_COMMON_DIR",
  "GIT_PREFIX",
];

function gitEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" };
  for (const key of REPO_OVERRIDES) delete env[key];
  return { ...env, ...extra };
}

export function git(args: string[], options: GitOptions): Promise<GitResult> {
  const okCodes = options.okCodes ?? [];
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      [...FORCED_CONFIG, ...args],
      { cwd: options.cwd, env: gitEnv(options.env), maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const exitCode = error ? exitCodeOf(error) : 0;
        if (exitCode === 0 || (exitCode !== null && okCodes.includes(exitCode))) {
          resolve({ stdout, stderr, exitCode });
          return;
        }
        const detail = stderr || (error instanceof Error ? error.message : "");
        reject(new GitError({ command: args, cwd: options.cwd, exitCode, stderr: detail }));
      },
    );
  });
}

function exitCodeOf(error: Error & { code?: unknown }): number | null {
  return typeof error.code === "number" ? error.code : null;
}

/** Splits NUL-separated output (`-z`), which survives any byte a path may contain. */
export function splitZ(stdout: string): string[] {
  return stdout.split("\0").filter((s) => s.length > 0);
}
