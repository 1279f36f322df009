export {
  type Claim,
  Ledger,
  type LedgerTotals,
  type NewWorkOrder,
  type RunEnding,
  type RunFacts,
} from "./ledger.ts";
export { type LedgerLocation, ledgerLocationFor, openLedger } from "./open.ts";
export type {
  GateResult,
  Merge,
  OrderStatus,
  Run,
  RunPhase,
  RunStatus,
  Transition,
  WorkOrder,
} from "./schema.ts";
