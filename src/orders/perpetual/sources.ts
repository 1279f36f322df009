import { sql } from "kysely";
import type { Ledger } from "../../ledger/index.ts";
import { git } from "../../workspace/git.ts";
import type { CoverageSettings, LintSettings } from "./check-sources.ts";
import type { CheckoutParts } from "./checkout.ts";
import { type FoundWork, findingKey } from "./found-work.ts";

export interface SourceContext {
  ledger: Ledger;
  repoPath: string;
  /** The landing branch: its committed tree is what the sources read. */
  branch: string;
  goalsFile: string;
  todoMarkers: string[];
  /** Fresh checkouts of the landing branch to run commands in (lint, coverage). */
  checkouts?: CheckoutParts;
  lint?: LintSettings;
  coverage?: CoverageSettings;
}

/** The kind of defect a perpetual source that cannot look for work raises (see WorkFinder). */
export const SOURCE_DEFECT_KIND = "perpetual_source";

const GOAL_LINE = /^\s*[-*]\s+(?!\[[xX]\])(?:\[ \]\s+)?(.+?)\s*$/;

/** Each "- goal" line of the goals file (a checked "- [x]" one is done); none without the file. */
export async function goalsSource(ctx: SourceContext): Promise<FoundWork[]> {
  const shown = await git(["show", `${ctx.branch}:${ctx.goalsFile}`], {
    cwd: ctx.repoPath,
    okCodes: [128],
  });
  if (shown.exitCode !== 0) return [];
  return shown.stdout.split("\n").flatMap((line) => {
    const goal = GOAL_LINE.exec(line)?.[1];
    if (!goal) return [];
    return [
      {
        key: findingKey("goal", goal),
        title: goal,
        spec: `A goal of ${ctx.goalsFile}: ${goal}\nMake the smallest complete change that meets it, with tests.`,
        acceptance: `The goal is met: ${goal}. The repository's tests pass, new behaviour has tests.`,
        scope: [],
        source: `goals:${ctx.goalsFile}`,
      },
    ];
  });
}

/** Each marker comment (TODO, FIXME, ...) in the landing branch's files, scoped to its file. */
export async function todoSource(ctx: SourceContext): Promise<FoundWork[]> {
  const words = ctx.todoMarkers.join("|");
  const found = await git(["grep", "-n", "-I", "-E", `\\b(${words})\\b[:(]?`, ctx.branch, "--"], {
    cwd: ctx.repoPath,
    okCodes: [1],
  });
  if (found.exitCode !== 0) return [];
  const marker = new RegExp(`\\b(${words})\\b`);
  return found.stdout.split("\n").flatMap((row) => {
    // branch:path:line:text
    const rest = row.slice(ctx.branch.length + 1);
    const match = /^(.*?):(\d+):(.*)$/.exec(rest);
    if (!match) return [];
    const [, file = "", line = "", text = ""] = match;
    const at = text.search(marker);
    const note = text.slice(at).trim();
    if (at < 0 || !note) return [];
    return [
      {
        // The file and the note, not the line number: the same TODO moved down a line is the same.
        key: findingKey("todo", `${file}\n${note}`),
        title: `Resolve ${note.slice(0, 150)} (${file})`,
        spec: `${file}:${line} has the note:\n  ${text.trim()}\nDo what it asks, and remove the note.`,
        acceptance: `The note is gone from ${file}, what it asked for is done, and the tests pass.`,
        scope: [file],
        source: `todo:${file}:${line}`,
      },
    ];
  });
}

/** Each open defect: a person's look is wanted, and an agent may well find the cause first. */
export async function defectsSource(ctx: SourceContext): Promise<FoundWork[]> {
  const defects = await ctx.ledger.listDefects({ status: "open" });
  // A source that cannot run is a setting for a person to fix, not work for an agent.
  return defects
    .filter((d) => d.kind !== SOURCE_DEFECT_KIND)
    .map((d) => ({
      key: `defect-${d.id}`,
      title: `Fix the cause of defect D-${d.id}: ${d.summary.slice(0, 150)}`,
      spec: `Defect D-${d.id} (${d.kind})${d.order_id ? ` on WO-${d.order_id}` : ""}: ${d.summary}\nEvidence: ${JSON.stringify(d.evidence).slice(0, 2000)}`,
      acceptance: `What made defect D-${d.id} happen can no longer happen (a test shows it), and the tests pass.`,
      scope: [],
      source: `defect:D-${d.id}`,
    }));
}

/**
 * Flaky tests: a commit the test gate both passed and failed, read from the recorded gate
 * results (no test is run for it). One order per distinct failure line.
 */
export async function flakyTestsSource(ctx: SourceContext): Promise<FoundWork[]> {
  const rows = await sql<{ commit_sha: string; output: string }>`
    select distinct on (g.commit_sha) g.commit_sha, g.output from gate_results g
    where g.gate = 'test' and not g.passed and not g.timed_out
      and exists (select 1 from gate_results p
                  where p.gate = 'test' and p.passed and p.commit_sha = g.commit_sha)
    order by g.commit_sha, g.id desc`.execute(ctx.ledger.db);
  const seen = new Set<string>();
  return rows.rows.flatMap((row) => {
    const failing = failingLine(row.output);
    if (seen.has(failing)) return [];
    seen.add(failing);
    return [
      {
        key: findingKey("flaky", failing),
        title: `Make a flaky test reliable: ${failing.slice(0, 150)}`,
        spec: `The test gate both passed and failed on commit ${row.commit_sha.slice(0, 12)}, unchanged. The failure said:\n${row.output.slice(-2000)}\nFind why it depends on timing, order or environment and make it deterministic.`,
        acceptance: "The test passes every time: run it 20 times in a row without a failure.",
        scope: [],
        source: `tests:flaky:${row.commit_sha.slice(0, 12)}`,
      },
    ];
  });
}

function failingLine(output: string): string {
  const lines = output.split("\n").map((l) => l.trim());
  return (
    lines.find((l) => /^not ok\b|✖|FAIL\b|AssertionError|Error:/.test(l)) ??
    lines.filter(Boolean).at(-1) ??
    "the test gate failed"
  );
}
