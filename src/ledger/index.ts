export {
  type AdoptOptions,
  type AgentChoice,
  type Claim,
  Ledger,
  type LedgerTotals,
  type NewWorkOrder,
  type RunEnding,
  type RunFacts,
  type SpendTotals,
} from "./ledger.ts";
export { type LedgerLocation, ledgerLocationFor, openLedger } from "./open.ts";
export type {
  Defect,
  GateResult,
  Merge,
  ModelRequest,
  NewModelRequest,
  OrderStatus,
  Run,
  RunPhase,
  RunStatus,
  Transition,
  WorkOrder,
} from "./schema.ts";
