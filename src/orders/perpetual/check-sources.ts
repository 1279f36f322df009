import { readFile } from "node:fs/promises";
import path from "node:path";
import type { FindingFormat } from "../../config/index.ts";
import { git } from "../../workspace/git.ts";
import { type CheckedRun, type CheckoutParts, withCheckout } from "./checkout.ts";
import { type CoverageMetric, type FileCoverage, readCoverageReport } from "./coverage-report.ts";
import { PerpetualSourceError } from "./errors.ts";
import { type Finding, keepKnownFiles, parseFindings } from "./findings.ts";
import { type FoundWork, findingKey } from "./found-work.ts";

export interface LintCommand {
  name: string;
  command: string;
  format: FindingFormat;
}

export interface LintSettings {
  commands: LintCommand[];
  timeoutMs: number;
}

export interface CoverageSettings {
  /** Empty: the report is read from the repository's folder as it is. */
  command: string;
  report: string;
  format: "auto" | "istanbul-summary" | "lcov";
  metric: CoverageMetric;
  /** A percentage: files covered below it become orders. */
  threshold: number;
  timeoutMs: number;
}

/** Error lines an order's spec quotes; the rest is counted. */
const QUOTED_FINDINGS = 30;

/**
 * Lint and type errors: each configured command runs in a fresh checkout of the landing branch,
 * its output is read as findings, and each committed file with findings becomes one order scoped
 * to that file, quoting the findings. Files with the most findings come first.
 */
export async function lintSource(
  parts: CheckoutParts,
  settings: LintSettings,
): Promise<FoundWork[]> {
  return withCheckout(parts, "lint", async (checkout) => {
    const found: FoundWork[] = [];
    for (const check of settings.commands) {
      const ran = await checkout.run(check.command, settings.timeoutMs);
      const all = parseFindings(ran.stdout, check.format);
      if (all.length === 0 && ran.exitCode !== 0) throw failedWithout(check, ran);
      const byFile = groupByFile(keepKnownFiles(all, checkout.path, checkout.files));
      const files = [...byFile].sort(
        (a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]),
      );
      for (const [file, findings] of files) found.push(lintOrder(check, file, findings));
    }
    return found;
  });
}

function lintOrder(check: LintCommand, file: string, findings: Finding[]): FoundWork {
  const lines = findings.map(
    (f) => `  ${file}${f.line ? `:${f.line}${f.column ? `:${f.column}` : ""}` : ""}: ${f.message}`,
  );
  const quoted = lines.slice(0, QUOTED_FINDINGS).join("\n");
  const more =
    lines.length > QUOTED_FINDINGS ? `\n  ... and ${lines.length - QUOTED_FINDINGS} more` : "";
  const n = findings.length;
  // What is wrong, not where: the same errors a few lines further down are the same finding.
  const identity = [...new Set(findings.map((f) => f.message))].sort().join("\n");
  return {
    key: findingKey("lint", `${check.name}\n${file}\n${identity}`),
    title: `Fix ${n} ${check.name} finding${n === 1 ? "" : "s"} in ${file}`,
    spec: `\`${check.command}\` (the "${check.name}" check) reports in ${file}:\n${quoted}${more}\nFix their causes in ${file}.`,
    acceptance: `\`${check.command}\` reports nothing in ${file}, without silencing it (no suppression comments, no changes to the check's configuration), and the tests pass.`,
    scope: [file],
    source: `lint:${check.name}:${file}`,
    onePerSource: true,
  };
}

function failedWithout(check: LintCommand, ran: CheckedRun): PerpetualSourceError {
  const said = `${ran.stdout.trim().slice(-1_000)}\n${ran.stderrTail.trim()}`.trim();
  return new PerpetualSourceError(
    "source_command_failed",
    `the "${check.name}" check \`${check.command}\` exited ${ran.exitCode ?? "on a signal"} without a finding in the format "${check.format}"${said ? `; it said: ${said.slice(-1_500)}` : ""}`,
    `run it in a fresh clone of the landing branch to see why (dependencies not installed? prefix it, e.g. "npm ci && ..."), and check its format in [perpetual.lint] of nightshift.toml`,
    { details: { check: check.name, exitCode: ran.exitCode } },
  );
}

function groupByFile(findings: Finding[]): Map<string, Finding[]> {
  const byFile = new Map<string, Finding[]>();
  for (const f of findings) byFile.set(f.file, [...(byFile.get(f.file) ?? []), f]);
  return byFile;
}

/**
 * Low coverage: the coverage command runs in a fresh checkout (or, without one, the report the
 * repository's folder holds is read), and each committed file covered below the threshold becomes
 * an order scoped to it, with its figure (and its uncovered lines when lcov gives them). The least
 * covered files come first.
 */
export async function coverageSource(
  parts: CheckoutParts & { repoPath: string; branch: string },
  settings: CoverageSettings,
): Promise<FoundWork[]> {
  if (!settings.command.trim()) {
    const listed = await git(["ls-tree", "-r", "-z", "--name-only", parts.branch], {
      cwd: parts.repoPath,
    });
    const files = new Set(listed.stdout.split("\0").filter(Boolean));
    return lowCoverage(await readReport(parts.repoPath, settings), parts.repoPath, files, settings);
  }
  return withCheckout(parts, "coverage", async (checkout) => {
    const ran = await checkout.run(settings.command, settings.timeoutMs);
    let coverage: FileCoverage[];
    try {
      coverage = await readReport(checkout.path, settings);
    } catch (error) {
      // A command that failed and left no report: say what the command said.
      if (ran.exitCode !== 0 && error instanceof PerpetualSourceError) {
        throw new PerpetualSourceError(
          "source_command_failed",
          `the coverage command \`${settings.command}\` exited ${ran.exitCode ?? "on a signal"} and wrote no report ${settings.report}: ${`${ran.stdout.slice(-800)}\n${ran.stderrTail}`.trim().slice(-1_500)}`,
          'run it in a fresh clone of the landing branch to see why (dependencies not installed? prefix it, e.g. "npm ci && ...")',
          { cause: error },
        );
      }
      throw error;
    }
    return lowCoverage(coverage, checkout.path, checkout.files, settings);
  });
}

async function readReport(root: string, settings: CoverageSettings): Promise<FileCoverage[]> {
  const file = path.join(root, settings.report);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new PerpetualSourceError(
      "coverage_report_missing",
      `no coverage report at ${settings.report}${settings.command.trim() ? ` after \`${settings.command}\`` : ` in ${root}`}: ${(error as Error).message}`,
      settings.command.trim()
        ? "make the command write its report there (e.g. a json-summary or lcov reporter), or set [perpetual.coverage] report to where it writes"
        : "set [perpetual.coverage] command to a command that writes it, or run your tests with coverage first",
      { cause: error },
    );
  }
  return readCoverageReport(text, settings.report, settings.format, settings.metric);
}

function lowCoverage(
  coverage: FileCoverage[],
  root: string,
  known: Set<string>,
  settings: CoverageSettings,
): FoundWork[] {
  const byFile = new Map<string, FileCoverage>();
  for (const c of coverage) {
    const file = path.relative(root, path.resolve(root, c.file)).split(path.sep).join("/");
    if (!known.has(file) || c.total === 0) continue;
    byFile.set(file, { ...c, file });
  }
  const low = [...byFile.values()]
    .map((c) => ({ ...c, pct: (100 * c.covered) / c.total }))
    .filter((c) => c.pct < settings.threshold)
    .sort((a, b) => a.pct - b.pct || a.file.localeCompare(b.file));
  const measured = settings.command.trim()
    ? `\`${settings.command}\``
    : `the coverage report ${settings.report}`;
  return low.map((c) => {
    const figure = `${c.pct.toFixed(1)}% of ${settings.metric} (${c.covered} of ${c.total})`;
    const uncovered = c.uncoveredLines?.length
      ? `\nLines no test runs: ${lineRanges(c.uncoveredLines)}.`
      : "";
    return {
      key: findingKey("coverage", `${c.file}\n${settings.metric}\n${c.covered}/${c.total}`),
      title: `Raise test coverage of ${c.file}: ${c.pct.toFixed(1)}% of ${settings.metric}, below ${settings.threshold}%`,
      spec: `${measured} measures ${figure} of ${c.file} covered by the tests, below the threshold of ${settings.threshold}%.${uncovered}\nWrite tests that exercise the uncovered behaviour and assert what it should do; fix what they find wrong.`,
      acceptance: `${measured} measures at least ${settings.threshold}% of ${settings.metric} of ${c.file} covered, by tests that assert behaviour (not only run it), and the tests pass.`,
      scope: [c.file],
      source: `coverage:${c.file}`,
      onePerSource: true,
    };
  });
}

/** "3-5, 9, 12-14" */
function lineRanges(lines: number[]): string {
  const sorted = [...new Set(lines)].sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) j++;
    ranges.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  const shown = ranges.slice(0, 40).join(", ");
  return ranges.length > 40 ? `${shown}, ... (${ranges.length - 40} more ranges)` : shown;
}
