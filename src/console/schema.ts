import { z } from "zod";
import { BUDGET_LIMIT_NAMES } from "../ledger/budget-limit-names.ts";

/**
 * The console's HTTP API, as zod schemas: the server validates every request body with them, the
 * UI imports their types, and docs/console-api.md is generated from them (a test keeps it current).
 * Keep this file free of server code: the UI bundles it.
 */

const note = z.string().max(2000).optional().describe("why (kept in the ledger)");

/** POST /api/orders/:id/control */
export const OrderControlBody = z
  .object({
    action: z.enum(["retry", "requeue", "cancel", "approve", "reject"]),
    note,
  })
  .strict();

/** POST /api/orders/:id/amend */
export const AmendOrderBody = z
  .object({
    priority: z.number().int().min(-1000).max(1000).optional().describe("higher runs first"),
    budgetTokens: z
      .number()
      .int()
      .positive()
      .max(100_000_000)
      .nullable()
      .optional()
      .describe("tokens one run of the order may spend; null: the factory's"),
    note,
  })
  .strict()
  .refine((b) => b.priority !== undefined || b.budgetTokens !== undefined, {
    message: "give priority or budgetTokens (or both)",
  });

/** POST /api/orders */
export const AddOrderBody = z
  .object({
    title: z.string().trim().min(1).max(500),
    spec: z.string().max(100_000).optional(),
    acceptance: z.string().max(100_000).optional(),
    priority: z.number().int().min(-1000).max(1000).optional(),
    scope: z.array(z.string().min(1)).max(200).optional(),
    key: z.string().trim().min(1).max(200).optional(),
    dependsOn: z.array(z.string().min(1)).max(200).optional(),
    maxAttempts: z.number().int().min(1).max(100).optional(),
    budgetTokens: z.number().int().positive().max(100_000_000).optional(),
    needsApproval: z
      .boolean()
      .optional()
      .describe("wait for a person's approval before the order is queued"),
  })
  .strict();

/** POST /api/budget/limits: set or clear the live override of one of the factory's limits. */
export const BudgetLimitBody = z
  .object({
    name: z.enum(BUDGET_LIMIT_NAMES).describe("the limit: a [budget] key of nightshift.toml"),
    value: z
      .number()
      .min(0, "must be 0 or more")
      .nullable()
      .describe(
        "the new limit (US dollars; tokens for max_tokens_per_run, a whole number); null clears the override, so nightshift.toml's value applies again",
      ),
    note,
  })
  .strict();

/** POST /api/runs/:id/stop */
export const StopRunBody = z.object({ note }).strict();

/** POST /api/line/pause and /api/line/resume */
export const LineSwitchBody = z.object({ note }).strict();

/** POST /api/defects/:id/close */
export const CloseDefectBody = z.object({ note }).strict();

/** Every error the API answers with (4xx and 5xx). */
export const ApiError = z.object({
  error: z.object({
    code: z.string().describe("stable: e.g. order_control_refused, invalid_body, unauthorized"),
    message: z.string(),
    hint: z.string().optional(),
  }),
});

export type OrderControlBody = z.infer<typeof OrderControlBody>;
export type AmendOrderBody = z.infer<typeof AmendOrderBody>;
export type AddOrderBody = z.infer<typeof AddOrderBody>;
export type BudgetLimitBody = z.infer<typeof BudgetLimitBody>;
export type ApiError = z.infer<typeof ApiError>;

// ── what the API answers ─────────────────────────────────────────────────────────────────────────

/** Where an order is on the line. */
export const STATIONS = [
  "waiting",
  "queued",
  "running",
  "gating",
  "merging",
  "landed",
  /** Opened as a pull request ([github] output = "pull_request") for people to merge. */
  "proposed",
  "failed",
  "defect",
  "cancelled",
] as const;
export type Station = (typeof STATIONS)[number];

export const OrderView = z.object({
  id: z.number(),
  key: z.string().nullable(),
  title: z.string(),
  status: z.string(),
  station: z.enum(STATIONS),
  priority: z.number(),
  attempts: z.number(),
  budgetTokens: z.number().nullable(),
  failureReason: z.string().nullable(),
  landedCommit: z.string().nullable(),
  liveRunId: z.number().nullable(),
  lastRunId: z.number().nullable(),
  openDefects: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type OrderView = z.infer<typeof OrderView>;

export const RunSummary = z.object({
  id: z.number(),
  orderId: z.number(),
  attempt: z.number(),
  status: z.string(),
  phase: z.string(),
  agent: z.string(),
  model: z.string(),
  workerId: z.string(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  costUsd: z.number(),
  outcomeReason: z.string().nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
});
export type RunSummary = z.infer<typeof RunSummary>;

export const DefectView = z.object({
  id: z.number(),
  kind: z.string(),
  orderId: z.number().nullable(),
  runId: z.number().nullable(),
  summary: z.string(),
  status: z.string(),
  at: z.string(),
});
export type DefectView = z.infer<typeof DefectView>;

export const ControlView = z.object({
  id: z.string(),
  action: z.string(),
  orderId: z.number().nullable(),
  runId: z.number().nullable(),
  actor: z.string(),
  note: z.string(),
  details: z.unknown(),
  at: z.string(),
});
export type ControlView = z.infer<typeof ControlView>;

/** GET /api/line, and each `line` event of GET /api/stream */
export const LineView = z.object({
  factory: z.string(),
  at: z.string(),
  paused: z.object({
    paused: z.boolean(),
    reason: z.string(),
    by: z.string(),
    at: z.string(),
    seenAt: z.string().nullable(),
  }),
  /** Set when the latest check of main failed: the line starts no run until main passes. */
  mainFailing: z.object({ commit: z.string(), cause: z.string() }).nullable(),
  counts: z.record(z.enum(STATIONS), z.number()),
  throughput: z.object({
    landedLastHour: z.number(),
    runsLastHour: z.number(),
    costUsdTotal: z.number(),
    tokensTotal: z.number(),
  }),
  orders: z.array(OrderView),
  runs: z.array(RunSummary),
  defects: z.array(DefectView),
  controls: z.array(ControlView),
});
export type LineView = z.infer<typeof LineView>;

export const RunEventView = z.object({
  id: z.string(),
  seq: z.number(),
  kind: z.string(),
  payload: z.unknown(),
  at: z.string(),
});
export type RunEventView = z.infer<typeof RunEventView>;

export const GateView = z.object({
  gate: z.string(),
  stage: z.string(),
  commit: z.string(),
  passed: z.boolean(),
  exitCode: z.number().nullable(),
  timedOut: z.boolean(),
  output: z.string(),
  durationMs: z.number(),
  at: z.string(),
});

/** GET /api/runs/:id */
export const RunDetail = z.object({
  run: RunSummary,
  order: OrderView,
  events: z.array(RunEventView),
  gates: z.array(GateView),
  transcript: z.array(
    z.object({
      requestId: z.string(),
      at: z.string(),
      protocol: z.string(),
      model: z.string(),
      status: z.number(),
      request: z.string(),
      response: z.string(),
      error: z.string().optional(),
    }),
  ),
  modelRequests: z.number(),
  diff: z.string(),
  transitions: z.array(z.object({ to: z.string(), message: z.string(), at: z.string() })),
});
export type RunDetail = z.infer<typeof RunDetail>;

const Point = z.object({ t: z.string(), v: z.number() });

/** GET /api/charts: hourly series over the last `hours` hours (UTC hours). */
export const Charts = z.object({
  hours: z.number(),
  landedPerHour: z.array(Point),
  runsPerHour: z.array(Point),
  yieldPerHour: z.array(Point).describe("landed / runs ended in that hour"),
  costPerLanded: z.array(Point).describe("USD spent in that hour / changes landed in it"),
  spendPerHour: z.array(Point),
  defectsPerHour: z.array(Point),
  queueWaitSeconds: z.array(Point).describe("mean wait from order added to first run, by hour"),
  timeToLandSeconds: z.array(Point).describe("mean time from order added to landed, by hour"),
  budget: z.object({
    spentUsdToday: z.number(),
    dailyUsd: z.number().nullable(),
    spentUsdTotal: z.number(),
    totalUsd: z.number().nullable(),
  }),
});
export type Charts = z.infer<typeof Charts>;

/** One of the factory's spending limits: as applied, where it is set, and what is spent against it. */
export const BudgetLimitView = z.object({
  name: z.enum(BUDGET_LIMIT_NAMES),
  meaning: z.string(),
  unit: z.enum(["usd", "tokens"]),
  value: z.number().nullable().describe("as the gateways apply it; null: unlimited"),
  source: z.enum(["override", "nightshift.toml", "unset"]),
  configured: z.number().nullable().describe("nightshift.toml's value"),
  override: z.object({ value: z.number(), setBy: z.string(), setAt: z.string() }).nullable(),
  spent: z
    .number()
    .nullable()
    .describe("today's or the total spend; per run/order: the most a running one has spent"),
  spentBy: z.string().nullable(),
});
export type BudgetLimitView = z.infer<typeof BudgetLimitView>;

/** GET /api/budget, and POST /api/budget/limits's answer */
export const BudgetView = z.object({ limits: z.array(BudgetLimitView) });
export type BudgetView = z.infer<typeof BudgetView>;
