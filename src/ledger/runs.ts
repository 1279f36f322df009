import { sql } from "kysely";
import { NightshiftError } from "../errors/index.ts";
import type { NewGateResult, OrderStatus, Run, RunPhase, RunStatus, WorkOrder } from "./schema.ts";
import { type Db, recordTransition } from "./transitions.ts";

/** How a run ended, and what that means for its order. */
export type RunEnding =
  | { outcome: "landed"; reason: string; previousMain: string; landedCommit: string }
  | { outcome: "retry"; runStatus: "rejected" | "failed"; reason: string; feedback: string }
  | { outcome: "failed"; runStatus: "rejected" | "failed"; reason: string; feedback?: string }
  /** Not the order's fault (e.g. the factory's budget ran out): queued again, attempt not counted. */
  | { outcome: "requeue"; reason: string };

export type RunFacts = Partial<
  Pick<Run, "workspace_path" | "branch" | "base_commit" | "candidate_commit" | "merge_commit">
>;

export async function setRunPhase(
  db: Db,
  runId: number,
  phase: RunPhase,
  facts: RunFacts = {},
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const run = await tx
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
      .returning(["order_id"])
      .executeTakeFirstOrThrow();
    await recordTransition(tx, {
      order_id: run.order_id,
      run_id: runId,
      entity: "run",
      from_status: "running",
      to_status: "running",
      message: phase,
    });
  });
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
 * Closes a run and moves its order on, in one transaction: landed (with the merge row), back to
 * the queue with feedback for a retry, or failed. A run that is no longer `running` (taken back
 * after its lease expired) is not touched, so a late finisher cannot overwrite the recovery.
 */
export async function finishRun(
  db: Db,
  runId: number,
  ending: RunEnding,
): Promise<{ order: WorkOrder; run: Run }> {
  return db.transaction().execute(async (tx) => {
    const runStatus: RunStatus =
      ending.outcome === "landed"
        ? "landed"
        : ending.outcome === "requeue"
          ? "failed"
          : ending.runStatus;
    const run = await tx
      .updateTable("runs")
      .set({
        status: runStatus,
        phase: "done",
        outcome_reason: ending.reason,
        ended_at: new Date(),
        ...(ending.outcome === "landed" ? { merge_commit: ending.landedCommit } : {}),
      })
      .where("id", "=", runId)
      .where("status", "=", "running")
      .returningAll()
      .executeTakeFirst();
    if (!run) throw new NightshiftError("run_not_running", `run ${runId} is no longer running`);
    const orderStatus: OrderStatus =
      ending.outcome === "landed" ? "landed" : ending.outcome === "failed" ? "failed" : "queued";
    const order = await tx
      .updateTable("work_orders")
      .set((eb) => ({
        status: orderStatus,
        updated_at: new Date(),
        ...(ending.outcome === "landed"
          ? { landed_commit: ending.landedCommit, failure_reason: null }
          : ending.outcome === "requeue"
            ? { attempts: eb("attempts", "-", 1) }
            : { feedback: ending.feedback ?? null }),
        ...(ending.outcome === "failed" ? { failure_reason: ending.reason } : {}),
      }))
      .where("id", "=", run.order_id)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (ending.outcome === "landed") {
      await tx
        .insertInto("merges")
        .values({
          order_id: run.order_id,
          run_id: runId,
          previous_main: ending.previousMain,
          landed_commit: ending.landedCommit,
        })
        .execute();
    }
    await recordTransition(tx, {
      order_id: run.order_id,
      run_id: runId,
      entity: "run",
      from_status: "running",
      to_status: runStatus,
      message: ending.reason,
    });
    await recordTransition(tx, {
      order_id: run.order_id,
      entity: "order",
      from_status: "running",
      to_status: orderStatus,
      message: ending.reason,
    });
    return { order, run };
  });
}

export function withoutNul(_key: string, value: unknown): unknown {
  return typeof value === "string" ? value.replaceAll("\0", "\uFFFD") : value;
}
