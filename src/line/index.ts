export {
  type AcceptanceDraftParts,
  draftOrderAcceptance,
  type FactoryModelAccess,
} from "./acceptance-draft.ts";
export { BaselineKeeper, type BaselineVerdict, tellingLine } from "./baseline.ts";
export {
  type Allowance,
  CircuitBreaker,
  type CircuitBreakerSettings,
  DEFAULT_CIRCUIT_BREAKER,
} from "./circuit-breaker.ts";
export { ledgerScenarios } from "./holdout-scenarios.ts";
export { Line } from "./line.ts";
export { LeaderMergeQueue } from "./merge-leader.ts";
export {
  type AgentDrivers,
  type BudgetStop,
  describeModelFailure,
  type LineParts,
  type LineSettings,
  type ModelAccess,
  type ModelFailure,
} from "./parts.ts";
export type { LineProgress, ProgressListener } from "./progress.ts";
export { Housekeeper, pruneOldest, type RetentionLimits, rotateFile } from "./retention.ts";
export {
  DEFAULT_WATCHDOG,
  MELTDOWN_KINDS,
  type Meltdown,
  type MeltdownKind,
  type WatchdogLimits,
} from "./watchdog.ts";
