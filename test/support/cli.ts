import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";

/**
 * The real CLI in a child process (`node bin/nightshift.js`), on real git repositories and the
 * embedded PGlite ledger, with git's user configuration kept out.
 */

export const BIN = fileURLToPath(new URL("../../bin/nightshift.js", import.meta.url));

export const cliEnv: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
  NIGHTSHIFT_DATABASE_URL: "",
  // A developer's own keys must not decide what a test sees.
  ANTHROPIC_API_KEY: "",
  OPENAI_API_KEY: "",
  GEMINI_API_KEY: "",
};

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(
  cwd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...cliEnv, ...options.env }, timeout: options.timeoutMs ?? 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    "git",
    ["-c", "user.name=Test", "-c", "user.email=test@example.com", ...args],
    { cwd, env: cliEnv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  ).trim();
}

/** Temporary folders, removed by `removeAll` (call it in afterAll). */
export class TempDirs {
  private readonly dirs: string[] = [];

  async make(prefix: string): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  async removeAll(): Promise<void> {
    await Promise.all(this.dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

/**
 * A git repository with one commit on main, and main not checked out (nightshift moves it with
 * update-ref). `files` are committed too.
 */
export async function makeRepo(
  temps: TempDirs,
  files: Record<string, string> = { "README.md": "hello\n" },
): Promise<string> {
  const dir = await temps.make("nightshift-repo-");
  git(dir, "init", "--quiet", "-b", "main");
  for (const [file, content] of Object.entries(files)) {
    await writeFile(path.join(dir, file), content);
  }
  git(dir, "add", "-A");
  git(dir, "commit", "--quiet", "-m", "initial");
  return dir;
}

/** Opens the repository's embedded ledger for `fn` (while no CLI process holds it), then closes it. */
export async function withRepoLedger<T>(
  repo: string,
  fn: (ledger: Ledger) => Promise<T>,
): Promise<T> {
  const ledger = await openLedger({
    kind: "embedded",
    dataDir: path.join(repo, ".nightshift", "ledger"),
  });
  try {
    return await fn(ledger);
  } finally {
    await ledger.close();
  }
}
