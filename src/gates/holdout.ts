import { cp, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type CommandOptions, runCommand, type SandboxBackend } from "../sandbox/index.ts";
import { GateError } from "./errors.ts";
import type { Gate } from "./types.ts";

export interface HoldoutGateOptions {
  /** Folder of acceptance scenarios, outside every agent's workspace (e.g. .nightshift/holdout). */
  dir: string;
  /**
   * Command run in a scratch copy of the candidate with the scenarios copied in. With `{file}` it
   * runs once per scenario file (replaced by the file's path in the copy), so the hint can say
   * which scenarios failed; without, once for all.
   */
  command: string;
  /** Where the scenarios go inside the scratch copy; default ".holdout". */
  target?: string;
  timeoutMs?: number;
  /** Run the scenarios in a sandbox of this backend over the scratch copy (as command gates do). */
  sandbox?: SandboxBackend;
}

/**
 * Holdout scenarios: acceptance tests the agent never sees. They run against a scratch copy of the
 * candidate (never the agent's workspace, which a later attempt reuses), and only pass/fail and
 * the names of failing scenarios go back: their output would teach the agent the tests instead of
 * the task. The full output stays out of the ledger for the same reason.
 */
export function createHoldoutGate(options: HoldoutGateOptions): Gate {
  const target = options.target ?? ".holdout";
  if (path.isAbsolute(target) || target.split(/[\\/]/).includes("..")) {
    throw new GateError(
      "invalid_gate_options",
      "holdout",
      `target ${JSON.stringify(target)} must be a relative path inside the copy`,
      "fix [gates.holdout] target in nightshift.toml",
    );
  }
  return {
    name: "holdout",
    scope: "tree",
    async run(ctx) {
      const started = performance.now();
      const scenarios = await listScenarios(options.dir);
      const scratch = await mkdtemp(path.join(os.tmpdir(), "nightshift-holdout-"));
      try {
        await cp(ctx.workspacePath, scratch, {
          recursive: true,
          filter: (src) => path.basename(src) !== ".git",
        });
        await cp(options.dir, path.join(scratch, target), { recursive: true });
        const runs = options.command.includes("{file}")
          ? scenarios.map((file) => ({
              name: file,
              command: options.command.replaceAll("{file}", shellQuote(path.join(target, file))),
            }))
          : [{ name: "all scenarios", command: options.command }];
        const failed: string[] = [];
        let timedOut = false;
        for (const run of runs) {
          const result = await runIn(options.sandbox, {
            command: run.command,
            cwd: scratch,
            timeoutMs: options.timeoutMs ?? 600_000,
            ...(ctx.env ? { env: ctx.env } : {}),
            ...(ctx.signal ? { signal: ctx.signal } : {}),
          });
          if (result.aborted) {
            throw new GateError("gate_aborted", "holdout", "cancelled", "nothing to fix");
          }
          timedOut ||= result.timedOut;
          if (result.timedOut || result.exitCode !== 0) failed.push(run.name);
        }
        const passed = failed.length === 0;
        return {
          gate: "holdout",
          passed,
          exitCode: passed ? 0 : 1,
          output: passed
            ? `holdout: all ${runs.length} scenario run(s) passed`
            : `holdout scenarios failed: ${failed.join(", ")} (${failed.length} of ${runs.length}). ` +
              "These acceptance checks are hidden from you; re-read the order's acceptance criteria and handle the cases they imply.",
          durationMs: Math.round(performance.now() - started),
          timedOut,
        };
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },
  };
}

async function listScenarios(dir: string): Promise<string[]> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) {
    throw new GateError(
      "invalid_gate_options",
      "holdout",
      `holdout folder ${dir} does not exist`,
      "create it with the acceptance scenarios, or remove the holdout gate from [gates] order",
    );
  }
  return (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && !e.name.startsWith("."))
    .map((e) => e.name)
    .sort();
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

async function runIn(backend: SandboxBackend | undefined, command: CommandOptions) {
  if (!backend) return runCommand(command);
  const sandbox = await backend.create({ workspacePath: command.cwd });
  try {
    return await sandbox.exec(command);
  } finally {
    await sandbox.dispose();
  }
}
