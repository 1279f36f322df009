export {
  DEFAULT_REQUEST,
  DEFAULT_SALARY_USD,
  type EconomicsAnswer,
  type EconomicsQuestion,
  estimateEconomics,
  formatEconomics,
} from "./economics.ts";
export { EconomicsInputError } from "./errors.ts";
export { type LedgerFigures, ledgerFigures } from "./figures.ts";
export { ledgerMetrics, type MetricsSource } from "./prometheus.ts";
export {
  type FactoryReport,
  factoryReport,
  formatReport,
  gitLinesLanded,
  type ReportSettings,
} from "./report.ts";
