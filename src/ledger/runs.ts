import { sql } from "kysely";
import { NightshiftError } from "../errors/index.ts";
import { type OrderJson, orderFromJson } from "./order-json.ts";
import type { NewGateResult, OrderStatus, Run, RunPhase, RunStatus, WorkOrder } from "./schema.ts";
import type { Db } from "./transitions.ts";

/** How a run ended, and what that means for its order. */
export type RunEnding =
  | { outcome: "landed"; reason: string; previousMain: string; landedCommit: string }
  | { outcome: "retry"; runStatus: "rejected" | "failed"; reason: string; feedback: string }
  | { outcome: "failed"; runStatus: "rejected" | "failed"; reason: string; feedback?: string }
  /** Not the order's fault (e.g. the factory's budget ran out): queued again, attempt not counted. */
  | { outcome: "requeue"; reason: string }
  /** Opened as a pull request for people to merge ([github] output = "pull_request"). */
  | { outcome: "proposed"; reason: string; pullRequestUrl: string };

export type RunFacts = Partial<
  Pick<Run, "workspace_path" | "branch" | "base_commit" | "candidate_commit" | "merge_commit">
>;

/**
 * One statement, the transition row written beside the change: a run changes phase several times,
 * and on a busy ledger a transaction's four round trips were four waits behind the other runs.
 */
export async function setRunPhase(
  db: Db,
  runId: number,
  phase: RunPhase,
  facts: RunFacts = {},
): Promise<void> {
  const noted = await db
    .with("changed", (qb) =>
      qb
        .updateTable("runs")
        .set({
          phase,
          ...facts,
          // Entering the merge queue takes a place in it, kept over a restart.
          ...(phase === "merging"
            ? { queue_seq: sql<string>`coalesce(queue_seq, nextval('merge_queue_seq'))` }
            : {}),
        })
        .where("id", "=", runId)
        .returning(["order_id"]),
    )
    .insertInto("transitions")
    .columns(["order_id", "run_id", "entity", "from_status", "to_status", "message"])
    .expression((eb) =>
      eb
        .selectFrom("changed")
        .select((s) => [
          "changed.order_id",
          s.val(runId).as("run_id"),
          s.val("run").as("entity"),
          s.val("running").as("from_status"),
          s.val("running").as("to_status"),
          s.val(phase).as("message"),
        ]),
    )
    .returning("id")
    .executeTakeFirst();
  if (!noted) {
    throw new NightshiftError("run_not_found", `there is no run ${runId}`);
  }
}

export async function setRunFacts(db: Db, runId: number, facts: RunFacts): Promise<void> {
  await db.updateTable("runs").set(facts).where("id", "=", runId).execute();
}

/** Records that a candidate in the merge queue took part in its `rounds`-th test. */
export async function recordQueueRound(db: Db, runId: number, rounds: number): Promise<void> {
  await db
    .updateTable("runs")
    .set({ queue_rounds: sql<number>`greatest(queue_rounds, ${rounds})` })
    .where("id", "=", runId)
    .execute();
}

export async function appendEvents(
  db: Db,
  runId: number,
  events: { kind: string; payload: unknown }[],
): Promise<void> {
  if (events.length === 0) return;
  await db.transaction().execute(async (tx) => {
    const last = await tx
      .selectFrom("run_events")
      .select((eb) => eb.fn.max("seq").as("seq"))
      .where("run_id", "=", runId)
      .executeTakeFirst();
    let seq = Number(last?.seq ?? 0);
    await tx
      .insertInto("run_events")
      .values(
        events.map((e) => ({
          run_id: runId,
          seq: ++seq,
          kind: e.kind,
          // PostgreSQL's json cannot hold NUL (a tool's output of /proc/*/environ has them).
          payload: JSON.stringify(e.payload ?? null, withoutNul),
        })),
      )
      .execute();
  });
}

export async function recordGate(db: Db, result: Omit<NewGateResult, "id" | "at">): Promise<void> {
  await db.insertInto("gate_results").values(result).execute();
}

/**
 * Closes a run and moves its order on, in one statement (so one transaction): landed (with the
 * merge row), back to the queue with feedback for a retry, or failed, with both transition rows.
 * A run that is no longer `running` (taken back after its lease expired) is not touched, so a late
 * finisher cannot overwrite the recovery. One statement rather than a transaction of six: every
 * run ends here, and each round trip is a wait behind the other runs' traffic.
 */
export async function finishRun(
  db: Db,
  runId: number,
  ending: RunEnding,
): Promise<{ order: WorkOrder; run: Run }> {
  const runStatus = runStatusOf(ending);
  const orderStatus = orderStatusOf(ending);
  const now = new Date();
  const landed = ending.outcome === "landed";
  const rows = await sql<Run & { moved_order: OrderJson }>`
    with ended as (
      update runs set status = ${runStatus}, phase = 'done', outcome_reason = ${ending.reason},
        ended_at = ${now}${landed ? sql`, merge_commit = ${ending.landedCommit}` : sql``}
      where id = ${runId} and status = 'running'
      returning *),
    moved as (
      update work_orders set status = ${orderStatus}, updated_at = ${now}, ${orderChange(ending)}
      from ended
      where work_orders.id = ended.order_id
      returning work_orders.*),
    ${
      landed
        ? sql`merged as (
      insert into merges (order_id, run_id, previous_main, landed_commit)
      select order_id, id, ${ending.previousMain}::text, ${ending.landedCommit}::text from ended),`
        : sql``
    }
    noted as (
      -- One insert, the run's row first: transitions are read back in id order.
      insert into transitions (order_id, run_id, entity, from_status, to_status, message)
      select order_id, id, 'run', 'running', ${runStatus}::text, ${ending.reason}::text from ended
      union all
      select order_id, null, 'order', 'running', ${orderStatus}::text, ${ending.reason}::text
      from ended)
    select ended.*, row_to_json(moved) as moved_order from ended, moved`.execute(db);
  const row = rows.rows[0];
  if (!row) throw new NightshiftError("run_not_running", `run ${runId} is no longer running`);
  const { moved_order, ...run } = row;
  return { order: orderFromJson(moved_order), run };
}

function runStatusOf(ending: RunEnding): RunStatus {
  if (ending.outcome === "landed" || ending.outcome === "proposed") return ending.outcome;
  return ending.outcome === "requeue" ? "failed" : ending.runStatus;
}

function orderStatusOf(ending: RunEnding): OrderStatus {
  const { outcome } = ending;
  return outcome === "landed" || outcome === "proposed" || outcome === "failed"
    ? outcome
    : "queued";
}

/** What else an ending changes on its order, beside the status. */
function orderChange(ending: RunEnding) {
  switch (ending.outcome) {
    case "landed":
      return sql`landed_commit = ${ending.landedCommit}, failure_reason = null`;
    case "proposed":
      return sql`pull_request_url = ${ending.pullRequestUrl}, failure_reason = null`;
    case "requeue":
      // Not the order's fault: the attempt is not counted.
      return sql`attempts = work_orders.attempts - 1`;
    case "failed":
      return sql`feedback = ${ending.feedback ?? null}, failure_reason = ${ending.reason}`;
    case "retry":
      return sql`feedback = ${ending.feedback}`;
  }
}

export function withoutNul(_key: string, value: unknown): unknown {
  return typeof value === "string" ? value.replaceAll("\0", "\uFFFD") : value;
}
