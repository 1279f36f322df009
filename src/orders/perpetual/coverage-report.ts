import { PerpetualSourceError } from "./errors.ts";

export type CoverageMetric = "lines" | "statements" | "branches" | "functions";

/** One file's figure for one metric, as the report gives it. */
export interface FileCoverage {
  /** As the report names it (often absolute); made relative by the source. */
  file: string;
  covered: number;
  total: number;
  /** Lines no test ran (lcov's DA lines with 0 hits), when the report says. */
  uncoveredLines?: number[];
}

/**
 * Reads a coverage report: istanbul's json-summary (istanbul, nyc, c8, vitest, jest:
 * `{ "<file>": { lines: { total, covered, pct }, ... }, total: ... }`) or lcov (`SF:`, `LF:`/`LH:`,
 * `BRF:`/`BRH:`, `FNF:`/`FNH:`, `DA:`). "auto" takes a .json report for a summary, else lcov.
 */
export function readCoverageReport(
  text: string,
  reportPath: string,
  format: "auto" | "istanbul-summary" | "lcov",
  metric: CoverageMetric,
): FileCoverage[] {
  const kind =
    format === "auto"
      ? reportPath.toLowerCase().endsWith(".json")
        ? "istanbul-summary"
        : "lcov"
      : format;
  return kind === "istanbul-summary"
    ? summary(text, reportPath, metric)
    : lcov(text, reportPath, metric);
}

function summary(text: string, reportPath: string, metric: CoverageMetric): FileCoverage[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw unreadable(reportPath, `it is not JSON (${(error as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw unreadable(reportPath, "it is not a JSON object keyed by file");
  }
  return Object.entries(json as Record<string, unknown>).flatMap(([file, figures]) => {
    if (file === "total") return [];
    const m = (figures as Record<string, { total?: unknown; covered?: unknown }> | null)?.[metric];
    if (typeof m?.total !== "number" || typeof m.covered !== "number") {
      throw unreadable(
        reportPath,
        `its entry for ${file} has no ${metric}.total and ${metric}.covered`,
      );
    }
    return [{ file, covered: m.covered, total: m.total }];
  });
}

const LCOV_COUNTS: Record<Exclude<CoverageMetric, "statements">, [string, string]> = {
  lines: ["LF", "LH"],
  branches: ["BRF", "BRH"],
  functions: ["FNF", "FNH"],
};

function lcov(text: string, reportPath: string, metric: CoverageMetric): FileCoverage[] {
  if (metric === "statements") {
    throw new PerpetualSourceError(
      "coverage_report_unreadable",
      `${reportPath} is lcov, which has no statement counts`,
      'set [perpetual.coverage] metric to "lines", "branches" or "functions", or use a json-summary report',
    );
  }
  const [totalKey, hitKey] = LCOV_COUNTS[metric];
  const files: FileCoverage[] = [];
  let current: { file: string; total?: number; covered?: number; uncovered: number[] } | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const colon = line.indexOf(":");
    const key = colon < 0 ? line : line.slice(0, colon);
    const value = line.slice(colon + 1);
    if (key === "SF") current = { file: value, uncovered: [] };
    else if (!current) continue;
    else if (key === totalKey) current.total = Number(value);
    else if (key === hitKey) current.covered = Number(value);
    else if (key === "DA") {
      const [at, hits] = value.split(",");
      if (Number(hits) === 0) current.uncovered.push(Number(at));
    } else if (key === "end_of_record") {
      if (current.total !== undefined && current.covered !== undefined) {
        files.push({
          file: current.file,
          covered: current.covered,
          total: current.total,
          ...(metric === "lines" ? { uncoveredLines: current.uncovered } : {}),
        });
      }
      current = undefined;
    }
  }
  if (files.length === 0 && text.trim() && !/^SF:/m.test(text)) {
    throw unreadable(reportPath, "it has no SF: records (is it lcov?)");
  }
  return files;
}

function unreadable(reportPath: string, why: string): PerpetualSourceError {
  return new PerpetualSourceError(
    "coverage_report_unreadable",
    `cannot read the coverage report ${reportPath}: ${why}`,
    'point [perpetual.coverage] report at a json-summary (e.g. vitest --coverage.reporter=json-summary) or lcov file, and set format if its name does not say which ("istanbul-summary" or "lcov")',
  );
}
