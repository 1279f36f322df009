import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type CommandOptions, runCommand, type SandboxBackend } from "../sandbox/index.ts";
import { GateError } from "./errors.ts";
import { parseTestReport } from "./test-report.ts";
import type { Gate, GateContext } from "./types.ts";

/** One order's hidden acceptance scenario: a file the gate puts beside the global ones. */
export interface OrderScenario {
  orderId: number;
  name: string;
  content: string;
}

/**
 * The order-bound scenarios that judge a candidate of `orderId` (its own, and those of every
 * landed order); without an order (main itself, a merge-queue stack), the landed orders' only.
 */
export type HoldoutScenarioSource = (orderId: number | undefined) => Promise<OrderScenario[]>;

export interface HoldoutGateOptions {
  /**
   * Folder of global scenarios (invariants of the repository; its top-level files), outside every
   * agent's workspace (e.g. .nightshift/holdout).
   */
  dir: string;
  /**
   * Command run in a scratch copy of the candidate with the scenarios copied in. With `{file}` it
   * runs once per scenario file (replaced by the file's path in the copy), so the feedback can say
   * which scenarios failed; without, once for all.
   */
  command: string;
  /** Where the scenarios go inside the scratch copy; default ".holdout". */
  target?: string;
  timeoutMs?: number;
  /** Run the scenarios in a sandbox of this backend over the scratch copy (as command gates do). */
  sandbox?: SandboxBackend;
  /** Scenarios bound to orders; without it only the global folder's run. */
  scenarios?: HoldoutScenarioSource;
}

interface Planned {
  /** As the feedback names it: "slug.test.ts (WO-3, this order's acceptance)". */
  label: string;
  /** Path inside the scratch copy. */
  file: string;
  content: string;
  owner: "global" | "own" | "landed";
}

const MAX_OBSERVATION_LINES = 6;

/**
 * Holdout scenarios: acceptance checks the agent never sees. Global ones (files of the holdout
 * folder) are invariants of the repository; others belong to one order, run on its candidates,
 * and once it landed, on every later candidate, so a later change cannot silently undo it. They run
 * against a scratch copy of the candidate (never the agent's workspace, which a later attempt
 * reuses). What goes back names each failing scenario and what it observed (expected and actual
 * values, the assertion's message) but never its source: a line of a scenario file is never
 * repeated, else the agent would learn the tests instead of the task.
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
      const planned = await plan(options, target, ctx);
      const scratch = await mkdtemp(path.join(os.tmpdir(), "nightshift-holdout-"));
      try {
        await cp(ctx.workspacePath, scratch, {
          recursive: true,
          filter: (src) => path.basename(src) !== ".git",
        });
        await mkdir(path.join(scratch, target), { recursive: true });
        for (const p of planned) await writeFile(path.join(scratch, p.file), p.content);
        const perFile = options.command.includes("{file}");
        const runs = perFile
          ? planned.map((p) => ({
              scenarios: [p],
              command: options.command.replaceAll("{file}", shellQuote(p.file)),
            }))
          : [{ scenarios: planned, command: options.command }];
        const failures: { label: string; observed: string[] }[] = [];
        let timedOut = false;
        for (const run of runs) {
          if (run.scenarios.length === 0) continue;
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
          if (!result.timedOut && result.exitCode === 0) continue;
          const observed = result.timedOut
            ? ["timed out (look for a hang or an endless loop)"]
            : observations(result.output, run.scenarios, scratch);
          failures.push({
            label: perFile ? (run.scenarios[0]?.label ?? "?") : "all scenarios",
            observed,
          });
        }
        const passed = failures.length === 0;
        const total = perFile ? planned.length : planned.length > 0 ? 1 : 0;
        const output = passed
          ? `holdout: all ${total} scenario run(s) passed`
          : report(failures, total, planned, ctx);
        return {
          gate: "holdout",
          passed,
          exitCode: passed ? 0 : 1,
          output,
          durationMs: Math.round(performance.now() - started),
          timedOut,
          ...(passed ? {} : { feedback: output }),
        };
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },
  };
}

/** Every scenario that judges this candidate, with its place in the scratch copy. */
async function plan(options: HoldoutGateOptions, target: string, ctx: GateContext) {
  const globals = await listGlobal(options.dir, options.scenarios !== undefined);
  const planned: Planned[] = [];
  for (const name of globals) {
    const content = await readFile(path.join(options.dir, name), "utf8");
    planned.push({ label: name, file: path.join(target, name), content, owner: "global" });
  }
  const ownId = ctx.order?.id;
  for (const s of options.scenarios ? await options.scenarios(ownId) : []) {
    const own = s.orderId === ownId;
    planned.push({
      label: `${s.name} (WO-${s.orderId}, ${own ? "this order's acceptance" : "a landed order's acceptance"})`,
      // Flat beside the global ones, so relative imports read the same in every scenario.
      file: path.join(target, `WO-${s.orderId}.${s.name}`),
      content: s.content,
      owner: own ? "own" : "landed",
    });
  }
  return planned;
}

/**
 * What a failing scenario observed: its failing checks' names, expected and actual values and
 * assertion messages (or, for output that is not a test report, its failure-looking lines),
 * without any line of the scenarios' source and without paths into the scratch copy.
 */
function observations(output: string, scenarios: Planned[], scratch: string): string[] {
  const sourceLines = scenarios.flatMap((s) =>
    s.content
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length >= 8),
  );
  const leaks = (line: string) => {
    const t = line.trim();
    return sourceLines.some((src) => t.includes(src) || (t.length >= 12 && src.includes(t)));
  };
  const clean = (line: string) =>
    line.replaceAll(`${scratch}/`, "").replaceAll(scratch, ".").replace(/\s+$/, "");
  const report = parseTestReport(output);
  const lines: string[] = [];
  if (report.failing.length > 0) {
    for (const check of report.failing) {
      // The check's name is the scenario author's summary of the intent: it is meant to be read.
      lines.push(`check ${JSON.stringify(check.name)} failed`);
      if (check.expected !== undefined) lines.push(`expected: ${check.expected}`);
      if (check.observed !== undefined) lines.push(`observed: ${check.observed}`);
      for (const l of check.message.split("\n")) if (l.trim()) lines.push(l.trim());
    }
  } else {
    lines.push(
      ...output
        .split("\n")
        .filter((l) => /error|fail|assert|expected|received|cannot|not /i.test(l)),
    );
  }
  const kept = lines.map(clean).filter((l) => l.trim() && !leaks(l) && !/^\s*at /.test(l));
  return kept.length > 0
    ? kept
        .slice(0, MAX_OBSERVATION_LINES)
        .map((l) => (l.length > 300 ? `${l.slice(0, 297)}...` : l))
    : ["(it printed nothing that can be shown without giving its source away)"];
}

function report(
  failures: { label: string; observed: string[] }[],
  total: number,
  planned: Planned[],
  ctx: GateContext,
): string {
  const lines = [
    `Hidden acceptance scenarios failed: ${failures.length} of ${total} scenario run(s). Their source is hidden from you; what each one observed:`,
  ];
  for (const f of failures) {
    lines.push(`- scenario ${f.label}:`, ...f.observed.map((o) => `    ${o}`));
  }
  const owners = new Set(planned.map((p) => p.owner));
  const hints: string[] = [];
  if (owners.has("own")) {
    hints.push(
      ctx.order?.acceptance.trim()
        ? "This order's scenarios check its acceptance criteria: re-read them and handle the cases they imply."
        : "This order states no acceptance criteria: its scenarios check what its title and specification ask for, including the cases they imply.",
    );
  }
  if (owners.has("landed")) {
    hints.push(
      "A landed order's scenario checks a change that is already on main: keep that behaviour working.",
    );
  }
  if (owners.has("global")) {
    hints.push("Global scenarios check invariants of the repository that every change must keep.");
  }
  return [...lines, ...hints].join("\n");
}

async function listGlobal(dir: string, optional: boolean): Promise<string[]> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) {
    if (optional) return [];
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
