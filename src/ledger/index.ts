export { AcceptanceRecords, type ScenarioOwner } from "./acceptance.ts";
export {
  type AdoptOptions,
  type AgentChoice,
  type BudgetAccount,
  type BudgetHold,
  type BudgetVerdict,
  budgetAccountKeys,
  type Claim,
  type ExpiredLease,
  Ledger,
  type LedgerTotals,
  type NewWorkOrder,
  type RunEnding,
  type RunFacts,
  type SpendTotals,
  type WakeupSource,
} from "./ledger.ts";
export { LineSwitch } from "./line-state.ts";
export { type LedgerLocation, ledgerLocationFor, openLedger } from "./open.ts";
export { type OrderAction, OrderControls, recordControl } from "./order-controls.ts";
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
  WorkOrder,
} from "./schema.ts";
