import { changedFiles, globToRegExp, outcome, rangeOf } from "./diff.ts";
import { GateError } from "./errors.ts";
import type { Gate } from "./types.ts";

export interface DiffPolicyOptions {
  maxFiles: number;
  /** Added plus deleted lines over all text files. */
  maxLines: number;
  /** Globs of paths an agent may not touch (CI config, lockfiles, the gates' own files). */
  protectedPaths: string[];
  allowBinary: boolean;
}

export const DEFAULT_PROTECTED_PATHS = [
  ".github/**",
  ".gitlab-ci.yml",
  ".circleci/**",
  ".ci/**",
  "Jenkinsfile",
  "package-lock.json",
  "yarn.lock",
  "pnpm-lock.yaml",
  "bun.lockb",
  "Cargo.lock",
  "go.sum",
  "poetry.lock",
  "nightshift.toml",
  ".nightshift/**",
];

/**
 * Keeps changes reviewable and out of the places that decide what "green" means: a change that
 * edits the CI config, a lockfile or the gates' own configuration could pass by weakening the
 * checks instead of doing the work.
 */
export function createDiffPolicyGate(options: DiffPolicyOptions): Gate {
  for (const key of ["maxFiles", "maxLines"] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 1) {
      throw new GateError(
        "invalid_gate_options",
        "diff",
        `${key} must be a positive integer, got ${options[key]}`,
        "fix [gates.diff] in nightshift.toml",
      );
    }
  }
  const protectedPaths = options.protectedPaths.map((glob) => ({ glob, re: globToRegExp(glob) }));
  return {
    name: "diff",
    scope: "change",
    async run(ctx) {
      const started = performance.now();
      const { base, commit } = rangeOf("diff", ctx);
      const files = await changedFiles(ctx.workspacePath, base, commit);
      const problems: string[] = [];
      if (files.length > options.maxFiles) {
        problems.push(`changes ${files.length} files; at most ${options.maxFiles} are allowed`);
      }
      const lines = files.reduce((sum, f) => sum + f.added + f.deleted, 0);
      if (lines > options.maxLines) {
        problems.push(`changes ${lines} lines; at most ${options.maxLines} are allowed`);
      }
      for (const file of files) {
        const rule = protectedPaths.find((p) => p.re.test(file.path));
        if (rule) problems.push(`touches protected path ${file.path} (rule ${rule.glob})`);
        if (file.binary && !options.allowBinary)
          problems.push(`adds or changes binary file ${file.path}`);
      }
      const summary = `${files.length} files, ${lines} lines changed`;
      return problems.length === 0
        ? outcome("diff", started, true, `diff policy: ${summary}, within policy`)
        : outcome(
            "diff",
            started,
            false,
            `diff policy violated (${summary}):\n${problems.map((p) => `- ${p}`).join("\n")}\nKeep the change small and leave protected files alone.`,
          );
    },
  };
}
