import { execFile } from "node:child_process";
import { GateError } from "./errors.ts";
import type { GateContext } from "./types.ts";

export interface ChangedFile {
  path: string;
  /** A added, M modified, D deleted, T type changed (renames are reported as D + A). */
  status: string;
  added: number;
  deleted: number;
  binary: boolean;
}

/** Git with the user's hooks and pager out of the way; diffs must not depend on their config. */
export function gitIn(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      ["-c", "core.hooksPath=/dev/null", "-c", "core.quotePath=false", ...args],
      { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: "C" } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`git ${args.join(" ")} failed: ${stderr || error.message}`));
        else resolve(stdout);
      },
    );
  });
}

/** The diff range of a change-scoped gate; without a base it cannot judge anything. */
export function rangeOf(gate: string, ctx: GateContext): { base: string; commit: string } {
  if (!ctx.base) {
    throw new GateError(
      "gate_missing_context",
      gate,
      "judges a change but was given no base commit to measure it from",
      "run it through the line, which passes the candidate's base; in custom wiring set GateContext.base",
    );
  }
  return { base: ctx.base, commit: ctx.commit };
}

export async function changedFiles(cwd: string, base: string, commit: string) {
  const numstat = await gitIn(cwd, ["diff", "--numstat", "--no-renames", "-z", base, commit]);
  const names = await gitIn(cwd, ["diff", "--name-status", "--no-renames", "-z", base, commit]);
  const status = new Map<string, string>();
  const fields = names.split("\0").filter(Boolean);
  for (let i = 0; i + 1 < fields.length; i += 2)
    status.set(fields[i + 1] as string, fields[i] as string);
  const files: ChangedFile[] = [];
  for (const record of numstat.split("\0").filter(Boolean)) {
    const [added, deleted, path] = record.split("\t") as [string, string, string];
    const binary = added === "-" && deleted === "-";
    files.push({
      path,
      status: status.get(path) ?? "M",
      added: binary ? 0 : Number(added),
      deleted: binary ? 0 : Number(deleted),
      binary,
    });
  }
  return files;
}

/** Lines the change adds, per file, with their line numbers in the new file. */
export async function addedLines(
  cwd: string,
  base: string,
  commit: string,
): Promise<Map<string, Map<number, string>>> {
  const patch = await gitIn(cwd, [
    "diff",
    "-U0",
    "--no-color",
    "--no-renames",
    "--no-ext-diff",
    base,
    commit,
  ]);
  const byFile = new Map<string, Map<number, string>>();
  let current: Map<number, string> | undefined;
  let line = 0;
  for (const text of patch.split("\n")) {
    if (text.startsWith("+++ ")) {
      const path = text.slice(4);
      current = path === "/dev/null" ? undefined : new Map();
      if (current) byFile.set(path.replace(/^b\//, ""), current);
      continue;
    }
    const hunk = /^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(text);
    if (hunk) {
      line = Number(hunk[1]);
      continue;
    }
    if (current && text.startsWith("+")) current.set(line++, text.slice(1));
  }
  return byFile;
}

/** `**` any depth, `*` within one path segment, `?` one character; a pattern without / matches a basename anywhere. */
export function globToRegExp(glob: string): RegExp {
  const anchored = glob.includes("/") ? glob.replace(/^\//, "") : `**/${glob}`;
  let out = "";
  for (let i = 0; i < anchored.length; i++) {
    const c = anchored[i] as string;
    if (c === "*" && anchored[i + 1] === "*") {
      const slash = anchored[i + 2] === "/";
      out += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

export function outcome(gate: string, started: number, passed: boolean, output: string) {
  return {
    gate,
    passed,
    exitCode: passed ? 0 : 1,
    output,
    durationMs: Math.round(performance.now() - started),
    timedOut: false,
  };
}
