export {
  type CoverageSettings,
  coverageSource,
  type LintCommand,
  type LintSettings,
  lintSource,
} from "./check-sources.ts";
export { type CheckoutParts, runChecked, withCheckout } from "./checkout.ts";
export { type CoverageMetric, type FileCoverage, readCoverageReport } from "./coverage-report.ts";
export { PerpetualSourceError, type PerpetualSourceErrorCode } from "./errors.ts";
export { WorkFinder, type WorkFinderSettings } from "./finder.ts";
export { type Finding, keepKnownFiles, parseFindings } from "./findings.ts";
export { type FoundWork, findingKey, foundOrder } from "./found-work.ts";
export {
  defectsSource,
  flakyTestsSource,
  goalsSource,
  SOURCE_DEFECT_KIND,
  type SourceContext,
  todoSource,
} from "./sources.ts";
