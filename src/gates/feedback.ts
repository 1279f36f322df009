import { relevantHunks } from "./diff-hunks.ts";
import { type FailingCheck, parseTestReport, relative, type TestReport } from "./test-report.ts";
import type { GateOutcome } from "./types.ts";

/** Lines that usually carry the reason for a failure across test runners, compilers and linters. */
const FAILURE_LINE =
  /not ok|error|fail|assert|expected|received|panic|traceback|exception|\u2717|\u2715|\u00d7/i;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal escape sequences is the point
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;
/** Assertion messages continue on the next lines (expected/received, diff, stack frame). */
const CONTEXT_AFTER = 2;
const MAX_LINE_CHARS = 400;
const GAP = "  [...]";

/** Lines of a passing check: noise for an agent fixing a failure (3.3k of a 3.6k prompt once). */
const PASSING_LINE = /^\s*(ok \d+\b|# Subtest:|\u2713|\u2714|PASS\b|duration_ms:)/;

export interface FeedbackOptions {
  /** The whole feedback stays within this many characters (default 4,000). */
  maxChars?: number;
  /** The candidate's change as a unified diff (base..candidate): its relevant hunks are shown. */
  diff?: string;
  /** The workspace's path, cut from paths in the output so they read as the agent knows them. */
  root?: string;
}

/**
 * Feedback for the agent's next attempt, in a fixed structure agents read well: which gate
 * failed and how, then each failing check (its name, where, what was expected, what was observed,
 * the assertion's message), then the hunks of the change the failure points at, all within
 * maxChars. Passing checks are left out. Output that is not a test report (a compiler's, a
 * linter's) gets an excerpt instead: failure-looking lines with a little context, plus the end of
 * the output, where tools print their summary.
 */
export function feedbackFrom(outcome: GateOutcome, options: number | FeedbackOptions = {}): string {
  const opts = typeof options === "number" ? { maxChars: options } : options;
  const maxChars = opts.maxChars ?? 4000;
  if (outcome.passed) return clip(headerOf(outcome), maxChars);
  if (outcome.feedback) return clip(`${headerOf(outcome)}\n${outcome.feedback}`, maxChars);
  const report = parseTestReport(outcome.output, opts.root);
  // Room for the change is kept only when there is a change to show.
  const diffBudget = opts.diff?.trim() ? Math.floor(maxChars * 0.35) : 0;
  const body =
    report.failing.length > 0
      ? checksSection(outcome, report, maxChars - diffBudget)
      : `${headerOf(outcome)} Output excerpt (failure lines and the end of the output; passing lines left out):\n${excerptOf(relative(outcome.output, opts.root), maxChars - diffBudget - 200)}`;
  if (!diffBudget || !opts.diff) return clip(body, maxChars);
  const room = Math.min(diffBudget, maxChars - body.length - 60);
  const hunks = room > 100 ? relevantHunks(opts.diff, body, room) : "";
  return clip(
    hunks ? `${body}\n\n### Your change, where the failure points\n${hunks}` : body,
    maxChars,
  );
}

function headerOf(outcome: GateOutcome): string {
  const gate = JSON.stringify(outcome.gate);
  if (outcome.passed) return `Gate ${gate} passed.`;
  const seconds = (outcome.durationMs / 1000).toFixed(1);
  const how = outcome.timedOut
    ? `timed out after ${seconds}s and was killed (look for a hang or an endless loop)`
    : outcome.exitCode === null
      ? "was killed by a signal"
      : `failed with exit code ${outcome.exitCode}`;
  return `Gate ${gate} ${how}.`;
}

const MAX_CHECK_CHARS = 900;

function checksSection(outcome: GateOutcome, report: TestReport, budget: number): string {
  const failing = report.failing;
  const of = report.total !== undefined ? ` of ${report.total}` : "";
  const lines = [
    `${headerOf(outcome)} ${failing.length}${of} checks failed (passing ones are not shown).`,
  ];
  let used = lines[0]?.length ?? 0;
  let shown = 0;
  for (const [i, check] of failing.entries()) {
    const text = clip(checkText(check, i + 1, failing.length), MAX_CHECK_CHARS);
    if (used + text.length + 2 > budget - 200 && shown > 0) break;
    lines.push("", text);
    used += text.length + 2;
    shown++;
  }
  if (shown < failing.length) {
    const names = failing.slice(shown).map((c) => JSON.stringify(c.name));
    lines.push(
      "",
      clip(`${failing.length - shown} more failing check(s): ${names.join(", ")}`, 300),
    );
  }
  return lines.join("\n");
}

function checkText(check: FailingCheck, n: number, of: number): string {
  const out = [`### Failing check ${n} of ${of}: ${JSON.stringify(check.name)}`];
  if (check.where) out.push(`where: ${check.where}`);
  if (check.expected !== undefined) out.push(`expected: ${check.expected}`);
  if (check.observed !== undefined) out.push(`observed: ${check.observed}`);
  if (check.message) out.push(`assertion:\n${indent(cleanLines(check.message).join("\n"))}`);
  if (check.frames.length > 0) out.push(`stack:\n${indent(check.frames.join("\n"))}`);
  return out.join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

function excerptOf(output: string, budget: number): string {
  const lines = cleanLines(output).filter((line) => !PASSING_LINE.test(line));
  if (lines.length === 0) return "(the command printed nothing)";
  const whole = lines.join("\n");
  if (whole.length <= budget) return whole;

  const picker = new LinePicker(lines);
  // Half the room for the tail first: the summary must survive however many failures there are.
  for (let i = lines.length - 1; i >= 0 && picker.add(i, budget / 2); i--);
  // Gap markers cost too, so leave them a tenth of the room.
  const failureBudget = budget * 0.9;
  lines.forEach((line, i) => {
    if (!FAILURE_LINE.test(line)) return;
    for (let j = i; j <= i + CONTEXT_AFTER && j < lines.length; j++) picker.add(j, failureBudget);
  });
  for (let i = lines.length - 1; i >= 0 && picker.add(i, failureBudget); i--);
  return picker.render();
}

function cleanLines(output: string): string[] {
  const lines = output
    .replace(ANSI, "")
    .split(/\r?\n/)
    .map((line) => {
      const trimmed = line.trimEnd();
      return trimmed.length > MAX_LINE_CHARS ? `${trimmed.slice(0, MAX_LINE_CHARS)}...` : trimmed;
    });
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  while (lines.length > 0 && lines[0] === "") lines.shift();
  return lines;
}

class LinePicker {
  private readonly chosen = new Set<number>();
  private cost = 0;

  constructor(private readonly lines: string[]) {}

  /** Picks line i if it fits within limit; returns false once it does not. */
  add(i: number, limit: number): boolean {
    if (this.chosen.has(i)) return true;
    const cost = (this.lines[i]?.length ?? 0) + 1;
    if (this.cost + cost > limit) return false;
    this.chosen.add(i);
    this.cost += cost;
    return true;
  }

  render(): string {
    const picked = [...this.chosen].sort((a, b) => a - b);
    const out: string[] = [];
    let previous = -1;
    for (const i of picked) {
      if (i !== previous + 1) out.push(GAP);
      out.push(this.lines[i] ?? "");
      previous = i;
    }
    if (previous !== this.lines.length - 1) out.push(GAP);
    return out.join("\n");
  }
}

function clip(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, Math.max(0, maxChars - 3))}...`;
}
