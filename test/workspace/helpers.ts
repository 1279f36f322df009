import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Hide the machine's global and system git config, so the code under test is proven not to
 * depend on the user's identity or settings.
 */
export function isolateGitConfig(): void {
  process.env.GIT_CONFIG_GLOBAL = "/dev/null";
  process.env.GIT_CONFIG_NOSYSTEM = "1";
}

/** Runs git as the user would in their own checkout (with an identity of its own). */
export function sh(cwd: string, ...args: string[]): string {
  return execFileSync(
    "git",
    ["-c", "user.name=User", "-c", "user.email=user@example.com", ...args],
    {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    },
  ).trim();
}

export interface TempRepo {
  dir: string;
  cleanup: () => void;
}

/** A real repository with one commit on `main`, checked out like a user's clone. */
export function makeRepo(): TempRepo {
  const dir = mkdtempSync(join(tmpdir(), "nightshift-ws-"));
  sh(dir, "init", "--quiet", "-b", "main");
  writeFileSync(join(dir, "README.md"), "line one\nline two\n");
  sh(dir, "add", "README.md");
  sh(dir, "commit", "--quiet", "-m", "initial");
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function commitFile(cwd: string, file: string, content: string, message = file): string {
  writeFileSync(join(cwd, file), content);
  sh(cwd, "add", file);
  sh(cwd, "commit", "--quiet", "-m", message);
  return sh(cwd, "rev-parse", "HEAD");
}
