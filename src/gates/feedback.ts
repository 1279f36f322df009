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

/**
 * Feedback for the agent's next attempt: which gate failed and how, then the most telling part
 * of the output — failure-looking lines with a little context, plus the end of the output, where
 * runners print their summary — within maxChars.
 */
export function feedbackFrom(outcome: GateOutcome, maxChars = 4000): string {
  const header = headerOf(outcome);
  if (outcome.passed) return clip(header, maxChars);
  const excerpt = excerptOf(outcome.output, maxChars - header.length - 1);
  return clip(`${header}\n${excerpt}`, maxChars);
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
  return `Gate ${gate} ${how}. Output excerpt (failure lines and the end of the output):`;
}

function excerptOf(output: string, budget: number): string {
  const lines = cleanLines(output);
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
