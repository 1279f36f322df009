export { AcceptanceRecords, type ScenarioOwner } from "./acceptance.ts";
export {
  BUDGET_LIMIT_MEANINGS,
  BUDGET_LIMIT_NAMES,
  type BudgetLimitName,
  isTokenLimit,
} from "./budget-limit-names.ts";
export {
  BudgetLimitBook,
  type BudgetLimitOverride,
  type BudgetLimitOverrides,
  type BudgetLimitStanding,
  type BudgetSettings,
  budgetLimitName,
  checkBudgetLimitValue,
  type EffectiveBudgetLimit,
  effectiveLimits,
  parseBudgetLimitValue,
} from "./budget-limits.ts";
export {
  type BudgetAccount,
  BudgetBook,
  type BudgetHold,
  type BudgetVerdict,
  budgetAccountKeys,
} from "./budgets.ts";
export type { AgentChoice, Claim, ClaimOptions } from "./claims.ts";
export type { NewWorkOrder } from "./intake.ts";
export { Ledger, type LedgerTotals, type WakeupSource } from "./ledger.ts";
export { LineSwitch } from "./line-state.ts";
export { Metering, type SpendTotals } from "./metering.ts";
export { type LedgerLocation, ledgerLocationFor, openLedger } from "./open.ts";
export { type OrderAction, OrderControls, recordControl } from "./order-controls.ts";
export { type AdoptOptions, type ExpiredLease, RunRecovery } from "./recovery.ts";
export type { RunEnding, RunFacts } from "./runs.ts";
export type {
  BaselineCheck,
  ControlRecord,
  Defect,
  GateResult,
  HoldoutScenarioRow,
  LineState,
  Merge,
  ModelRequest,
  ModelRequestDeadLetter,
  NewModelRequest,
  OrderStatus,
  Run,
  RunPhase,
  RunStatus,
  ScenarioStatus,
  Transition,
  WorkerRow,
  WorkerState,
  WorkOrder,
} from "./schema.ts";
export { type TimeSpent, timeSpent } from "./time-spent.ts";
export { isTransientLedgerError } from "./transient.ts";
export { WorkerRoster, type WorkerView } from "./workers.ts";
