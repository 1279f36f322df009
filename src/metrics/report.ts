import type { Ledger, Merge } from "../ledger/index.ts";
import { git } from "../workspace/git.ts";
import { DEFAULT_SALARY_USD } from "./economics.ts";
import { type LedgerFigures, landedMerges, ledgerFigures } from "./figures.ts";

const DAYS_PER_YEAR = 365;
const MS_PER_DAY = 86_400_000;
/** Below this much metered time a per-day rate would be noise, so none is given. */
const MIN_SPAN_FOR_RATE_MS = 60 * 60 * 1000;

export interface ReportSettings {
  /** People supervising the line (for compute per supervisor); [economics] supervisors. */
  supervisors: number;
  salaryUsd: number;
}

export const defaultReportSettings: ReportSettings = {
  supervisors: 1,
  salaryUsd: DEFAULT_SALARY_USD,
};

/** The measured economics of a factory, from its ledger (and its repository for lines). */
export interface FactoryReport {
  runs: number;
  /** Runs that ended (anything but running). */
  endedRuns: number;
  landedChanges: number;
  /** Landed changes per ended run; null before any run ended. */
  yield: number | null;
  modelRequests: number;
  tokens: number;
  costUsd: number;
  costPerLandedChangeUsd: number | null;
  /** Lines added on main by the landed changes. */
  linesLanded: number;
  tokensPerLandedLine: number | null;
  supervisors: number;
  /** Metered spend divided among the people supervising the line. */
  computePerSupervisorUsd: number;
  /** Over the metered span (first to last request), when it is at least an hour. */
  spendPerDayUsd: number | null;
  computePerSupervisorPerDayUsd: number | null;
  /** A year of spend at that rate, in salaries. */
  engineerEquivalents: number | null;
  figures: LedgerFigures;
}

/** Lines a landed change added on main: `git diff --numstat` of its merge. */
export function gitLinesLanded(repoPath: string) {
  return async (merges: Merge[]): Promise<number> => {
    let lines = 0;
    for (const merge of merges) {
      const { stdout } = await git(
        ["diff", "--numstat", merge.previous_main, merge.landed_commit],
        { cwd: repoPath },
      );
      for (const row of stdout.split("\n")) {
        const added = Number(row.split("\t")[0]);
        if (Number.isFinite(added)) lines += added; // "-" for a binary file: no lines
      }
    }
    return lines;
  };
}

export async function factoryReport(
  ledger: Ledger,
  linesLanded: (merges: Merge[]) => Promise<number>,
  settings: ReportSettings = defaultReportSettings,
): Promise<FactoryReport> {
  const figures = await ledgerFigures(ledger);
  const lines = await linesLanded(await landedMerges(ledger));
  const runs = Object.values(figures.runs).reduce((a, b) => a + b, 0);
  const endedRuns = runs - (figures.runs.running ?? 0);
  const tokens = figures.inputTokens + figures.outputTokens;
  const per = (n: number, d: number) => (d > 0 ? n / d : null);
  const spanMs =
    figures.firstRequestAt && figures.lastRequestAt
      ? figures.lastRequestAt.getTime() - figures.firstRequestAt.getTime()
      : 0;
  const spendPerDayUsd =
    spanMs >= MIN_SPAN_FOR_RATE_MS ? figures.costUsd / (spanMs / MS_PER_DAY) : null;
  return {
    runs,
    endedRuns,
    landedChanges: figures.landedChanges,
    yield: per(figures.landedChanges, endedRuns),
    modelRequests: figures.modelRequests,
    tokens,
    costUsd: figures.costUsd,
    costPerLandedChangeUsd: per(figures.costUsd, figures.landedChanges),
    linesLanded: lines,
    tokensPerLandedLine: per(tokens, lines),
    supervisors: settings.supervisors,
    computePerSupervisorUsd: figures.costUsd / settings.supervisors,
    spendPerDayUsd,
    computePerSupervisorPerDayUsd:
      spendPerDayUsd === null ? null : spendPerDayUsd / settings.supervisors,
    engineerEquivalents:
      spendPerDayUsd === null ? null : (spendPerDayUsd * DAYS_PER_YEAR) / settings.salaryUsd,
    figures,
  };
}

export function formatReport(r: FactoryReport, simulated: boolean): string[] {
  const usd = (n: number | null) => (n === null ? "n/a" : `$${n.toFixed(4)}`);
  const num = (n: number | null, digits = 1) => (n === null ? "n/a" : n.toFixed(digits));
  const label = simulated ? " (SIMULATED model: priced as if a real one had been used)" : "";
  return [
    `runs                      ${r.runs} (${r.endedRuns} ended)`,
    `landed changes            ${r.landedChanges}`,
    `yield                     ${r.yield === null ? "n/a" : `${(r.yield * 100).toFixed(1)}% of ended runs landed`}`,
    `model requests            ${r.modelRequests}, ${r.tokens.toLocaleString("en-US")} tokens`,
    `cost                      ${usd(r.costUsd)}${label}`,
    `cost per landed change    ${usd(r.costPerLandedChangeUsd)}`,
    `lines landed              ${r.linesLanded}`,
    `tokens per landed line    ${num(r.tokensPerLandedLine)}`,
    `compute per supervisor    ${usd(r.computePerSupervisorUsd)} (${r.supervisors} supervising)${r.computePerSupervisorPerDayUsd === null ? "" : `, ${usd(r.computePerSupervisorPerDayUsd)} a day`}`,
    `engineer equivalents      ${r.engineerEquivalents === null ? "n/a (under an hour metered)" : `${num(r.engineerEquivalents, 3)} salaries a year at this rate`}`,
  ];
}
