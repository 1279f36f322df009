import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";

/** Kysely's view of the ledger; mirrors migrations/*.sql. */
export interface Database {
  work_orders: WorkOrdersTable;
  runs: RunsTable;
  run_events: RunEventsTable;
  gate_results: GateResultsTable;
  merges: MergesTable;
  transitions: TransitionsTable;
  model_requests: ModelRequestsTable;
  defects: DefectsTable;
  budget_accounts: BudgetAccountsTable;
  budget_reservations: BudgetReservationsTable;
  model_request_dead_letters: ModelRequestDeadLettersTable;
  holdout_scenarios: HoldoutScenariosTable;
  baseline_checks: BaselineChecksTable;
  line_state: LineStateTable;
  controls: ControlsTable;
  workers: WorkersTable;
  merge_leader: MergeLeaderTable;
  budget_limits: BudgetLimitsTable;
  budget_limits_version: BudgetLimitsVersionTable;
}

/** "waiting": for a person's approval (see `nightshift approve`) before it is queued. */
/** "proposed": its candidate was opened as a pull request for people to merge ([github] output). */
export type OrderStatus =
  | "waiting"
  | "queued"
  | "running"
  | "landed"
  | "proposed"
  | "failed"
  | "cancelled";
export type RunStatus = "running" | "landed" | "proposed" | "rejected" | "failed" | "abandoned";
export type RunPhase = "starting" | "agent" | "gates" | "merging" | "done";

type Json<T> = ColumnType<T, string, string>;
type CreatedAt = ColumnType<Date, never, never>;

export interface WorkOrdersTable {
  id: Generated<number>;
  key: string | null;
  title: string;
  spec: Generated<string>;
  acceptance: Generated<string>;
  priority: Generated<number>;
  scope: Json<string[]>;
  depends_on: Json<string[]>;
  status: Generated<OrderStatus>;
  attempts: Generated<number>;
  max_attempts: number | null;
  budget_tokens: number | null;
  /** The agent driver its runs use; null for the factory's [agent] driver. */
  driver: string | null;
  /** The model its runs use; null for the factory's [agent] model. */
  model: string | null;
  feedback: string | null;
  failure_reason: string | null;
  landed_commit: string | null;
  /** Set when the order ended "proposed": its pull request. */
  pull_request_url: Generated<string | null>;
  source: Generated<string>;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, never, Date>;
}

export interface RunsTable {
  id: Generated<number>;
  order_id: number;
  attempt: number;
  status: Generated<RunStatus>;
  phase: Generated<RunPhase>;
  agent: string;
  model: string;
  worker_id: string;
  lease_expires_at: Date;
  workspace_path: string | null;
  branch: string | null;
  base_commit: string | null;
  candidate_commit: string | null;
  merge_commit: string | null;
  /** Place in the merge queue (set on entering it); bigint, so read as a string. */
  queue_seq: ColumnType<string | null, never, string | null>;
  queue_rounds: Generated<number>;
  adoptions: Generated<number>;
  input_tokens: Generated<number>;
  output_tokens: Generated<number>;
  cost_usd: Generated<number>;
  outcome_reason: string | null;
  started_at: CreatedAt;
  ended_at: Date | null;
}

export interface RunEventsTable {
  id: Generated<string>;
  run_id: number;
  seq: number;
  kind: string;
  payload: Json<unknown>;
  at: CreatedAt;
}

export interface GateResultsTable {
  id: Generated<number>;
  run_id: number;
  gate: string;
  stage: "candidate" | "merge";
  commit_sha: string;
  passed: boolean;
  exit_code: number | null;
  timed_out: boolean;
  output: string;
  duration_ms: number;
  at: CreatedAt;
}

export interface MergesTable {
  id: Generated<number>;
  order_id: number;
  run_id: number;
  previous_main: string;
  landed_commit: string;
  at: CreatedAt;
}

export interface TransitionsTable {
  id: Generated<string>;
  order_id: number;
  run_id: number | null;
  entity: "order" | "run";
  from_status: string | null;
  to_status: string;
  message: string;
  at: CreatedAt;
}

export type WorkOrder = Selectable<WorkOrdersTable>;
export type Run = Selectable<RunsTable>;
export type RunUpdate = Updateable<RunsTable>;
export type GateResult = Selectable<GateResultsTable>;
export type NewGateResult = Insertable<GateResultsTable>;
export type Merge = Selectable<MergesTable>;
export type Transition = Selectable<TransitionsTable>;

export interface ModelRequestsTable {
  id: Generated<string>;
  request_id: string;
  run_id: number | null;
  order_id: number | null;
  protocol: string;
  model: string;
  status: number;
  stream: boolean;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cost_usd: number;
  usage_estimated: boolean;
  latency_ms: number;
  attempts: number;
  error: string | null;
  at: ColumnType<Date, Date | undefined, never>;
}

export type ModelRequest = Selectable<ModelRequestsTable>;
export type NewModelRequest = Insertable<ModelRequestsTable>;

export interface DefectsTable {
  id: Generated<number>;
  kind: string;
  order_id: number | null;
  run_id: number | null;
  summary: string;
  evidence: Json<unknown>;
  status: Generated<"open" | "closed">;
  at: CreatedAt;
  closed_at: Date | null;
  close_note: string | null;
}

export type Defect = Selectable<DefectsTable>;

/** One budget scope: 'run:<id>', 'order:<id>', 'day:<YYYY-MM-DD>' (UTC) or 'total'. */
export interface BudgetAccountsTable {
  key: string;
  spent_tokens: ColumnType<string, number | undefined, number>;
  spent_usd: ColumnType<number, number | undefined, number>;
  reserved_tokens: ColumnType<string, number | undefined, number>;
  reserved_usd: ColumnType<number, number | undefined, number>;
}

export interface BudgetReservationsTable {
  request_id: string;
  accounts: Json<string[]>;
  tokens: ColumnType<string, number, number>;
  usd: number;
  day: string;
  expires_at: Date;
}

export interface ModelRequestDeadLettersTable {
  id: Generated<number>;
  request_id: string;
  row: Json<unknown>;
  reason: string;
  at: CreatedAt;
}

export type ModelRequestDeadLetter = Selectable<ModelRequestDeadLettersTable>;
/** "draft": written by a model, waiting for a person's approval; runs nowhere until then. */
export type ScenarioStatus = "active" | "draft" | "rejected";

export interface HoldoutScenariosTable {
  id: Generated<number>;
  order_id: number;
  name: string;
  content: string;
  status: Generated<ScenarioStatus>;
  source: Generated<string>;
  created_at: CreatedAt;
}

export type HoldoutScenarioRow = Selectable<HoldoutScenariosTable>;

export interface BaselineChecksTable {
  id: Generated<number>;
  commit_sha: string;
  tree_sha: string;
  passed: boolean;
  cause: Generated<string>;
  at: CreatedAt;
}

export type BaselineCheck = Selectable<BaselineChecksTable>;

/** The one row saying whether the line takes new runs (see 0010_console.sql). */
export interface LineStateTable {
  id: ColumnType<number, never, never>;
  paused: boolean;
  reason: string;
  changed_by: string;
  changed_at: ColumnType<Date, never, Date>;
  seen_at: Date | null;
}

export type LineState = Selectable<LineStateTable>;

export interface ControlsTable {
  id: Generated<string>;
  action: string;
  order_id: number | null;
  run_id: number | null;
  actor: string;
  note: Generated<string>;
  details: Json<unknown>;
  at: CreatedAt;
}

export type ControlRecord = Selectable<ControlsTable>;
export type WorkerState = "working" | "draining" | "stopped";

export interface WorkersTable {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  state: Generated<WorkerState>;
  started_at: CreatedAt;
  heartbeat_at: ColumnType<Date, Date | undefined, Date>;
  stopped_at: ColumnType<Date | null, never, Date | null>;
}

export type WorkerRow = Selectable<WorkersTable>;

export interface MergeLeaderTable {
  singleton: Generated<boolean>;
  worker_id: string;
  lease_expires_at: Date;
  since: Generated<Date>;
}

/** A spending limit a person set live, overriding its nightshift.toml key (see 0012_budget_limits.sql). */
export interface BudgetLimitsTable {
  name: string;
  value: number;
  set_by: string;
  set_at: ColumnType<Date, Date | undefined, Date>;
}

export type BudgetLimitRow = Selectable<BudgetLimitsTable>;

export interface BudgetLimitsVersionTable {
  id: ColumnType<number, never, never>;
  version: ColumnType<string, never, string>;
}
