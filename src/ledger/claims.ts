import { type RawBuilder, sql } from "kysely";
import { type OrderJson, orderFromJson } from "./order-json.ts";
import type { Run, WorkOrder } from "./schema.ts";
import { DEPENDENCIES_LANDED, scopedCandidates } from "./scoped-claim.ts";
import type { UnscopedRule } from "./scopes.ts";
import { type Db, recordTransition } from "./transitions.ts";

/** An agent driver and the model it runs with: what a run needs working before it starts. */
export interface AgentChoice {
  driver: string;
  model: string;
}

export interface Claim {
  order: WorkOrder;
  run: Run;
}

/**
 * Takes the most urgent queued order whose dependencies have all landed and opens a run on it
 * under a lease. `skip locked` lets several workers claim at once without waiting on each other.
 * The run records the driver and model it uses: the order's own, else `agent` and `model`.
 */
export interface ClaimOptions {
  workerId: string;
  leaseMs: number;
  /** The driver for an order that names none. */
  agent: string;
  /** The model for an order that names none. */
  model: string;
  /** Hold back orders whose scope collides with a running one's (see scopes.ts). */
  scopes?: { unscoped: UnscopedRule };
}

/** The claimable orders (queued, every dependency landed), most urgent first. */
const CLAIMABLE = sql`
  select o.id, o.scope from work_orders o
  where o.status = 'queued'
    and ${DEPENDENCIES_LANDED}
  order by o.priority desc, o.id
  limit 1
  for update skip locked`;

export async function claimNext(db: Db, options: ClaimOptions): Promise<Claim | null> {
  const { scopes } = options;
  if (!scopes) return orNull(await claimPicked(db, CLAIMABLE, sql`true`, options));
  if (scopes.unscoped === "parallel") {
    // An order without a scope collides with nothing then, so claiming it needs neither the
    // claim lock nor a look at the running orders: when it is the most urgent one, one statement
    // claims it. Otherwise (a scoped order first) the claim takes the serialised path below.
    const first = await claimPicked(db, CLAIMABLE, sql`scope = '[]'::jsonb`, options);
    if (first !== "held back") return first;
  }
  return db.transaction().execute(async (tx) => {
    for (const id of await scopedCandidates(tx, scopes.unscoped)) {
      // A person's control (cancel, approve, ...) may hold the row: then the next one.
      const claim = orNull(
        await claimPicked(
          tx,
          sql`select id, scope from work_orders where id = ${id} and status = 'queued'
            for update skip locked`,
          sql`true`,
          options,
        ),
      );
      if (claim) return claim;
    }
    return null;
  });
}

/** A claim of a pick that was always claimable, or none. */
function orNull(claim: Claim | null | "held back"): Claim | null {
  return claim === "held back" ? null : claim;
}

/**
 * Opens a run on the order `pick` selects and locks (at most one row of id and scope) if it is
 * `claimable`, in one statement: move the order to running, open the run, and write both
 * transition rows. Null when nothing was picked; "held back" when the pick was not claimable.
 * A claim is the hottest path of a busy ledger, and on a loaded server each round trip is a wait
 * behind every other run's traffic; a transaction of five (begin, pick, update, insert, commit)
 * was most of a claim. Without scopes the statement is the whole claim, in an implicit transaction.
 *
 * The run comes back as a row and the order as JSON beside it (see order-json.ts).
 */
async function claimPicked(
  db: Db,
  pick: RawBuilder<unknown>,
  claimable: RawBuilder<unknown>,
  options: ClaimOptions,
): Promise<Claim | null | "held back"> {
  const rows = await sql<Run & { claimed_order: OrderJson | null; picked: boolean }>`
    with picked as materialized (${pick}),
    claimed as (
      update work_orders set status = 'running', attempts = attempts + 1, updated_at = now()
      where id = (select id from picked where ${claimable})
      returning *),
    opened as (
      insert into runs (order_id, attempt, agent, model, worker_id, lease_expires_at)
      select id, attempts, coalesce(driver, ${options.agent}::text),
        coalesce(model, ${options.model}::text), ${options.workerId}::text,
        ${new Date(Date.now() + options.leaseMs)}::timestamptz
      from claimed
      returning *),
    noted as (
      -- One insert, the order's row first: transitions are read back in id order.
      insert into transitions (order_id, run_id, entity, from_status, to_status, message)
      select id, null, 'order', 'queued', 'running', 'attempt ' || attempts from claimed
      union all
      select order_id, id, 'run', null, 'running', '' from opened)
    select opened.*, row_to_json(claimed) as claimed_order,
      exists (select 1 from picked) as picked
    from (select) as one left join opened on true left join claimed on true`.execute(db);
  const row = rows.rows[0];
  if (!row?.claimed_order) return row?.picked ? "held back" : null;
  const { claimed_order, picked: _, ...run } = row;
  return { order: orderFromJson(claimed_order), run };
}

/**
 * Every distinct driver and model that orders still to run (queued, or running and so requeued
 * on a restart) will use, an order naming none taking `defaults`: what a check before the line
 * starts must prove working, so that no order finds out by burning its attempts.
 */
export async function pendingAgentChoices(db: Db, defaults: AgentChoice): Promise<AgentChoice[]> {
  const rows = await db
    .selectFrom("work_orders")
    .select((eb) => [
      eb.fn.coalesce("driver", eb.val(defaults.driver)).as("driver"),
      eb.fn.coalesce("model", eb.val(defaults.model)).as("model"),
    ])
    .where("status", "in", ["queued", "running"])
    .distinct()
    .orderBy("driver")
    .orderBy("model")
    .execute();
  return rows.map((r) => ({ driver: r.driver, model: r.model }));
}

/** Orders that can never start because a dependency failed or was cancelled become failed. */
export async function failBlockedOrders(db: Db): Promise<WorkOrder[]> {
  return db.transaction().execute(async (tx) => {
    const blocked = await sql<{ id: number; dep: string }>`
      select o.id, d.key as dep from work_orders o
      join work_orders d on o.depends_on ? d.key
      where o.status = 'queued' and d.status in ('failed', 'cancelled')`.execute(tx);
    const failed: WorkOrder[] = [];
    for (const { id, dep } of blocked.rows) {
      const reason = `dependency "${dep}" did not land`;
      const order = await tx
        .updateTable("work_orders")
        .set({ status: "failed", failure_reason: reason, updated_at: new Date() })
        .where("id", "=", id)
        .where("status", "=", "queued")
        .returningAll()
        .executeTakeFirst();
      if (!order) continue;
      await recordTransition(tx, {
        order_id: id,
        entity: "order",
        from_status: "queued",
        to_status: "failed",
        message: reason,
      });
      failed.push(order);
    }
    return failed;
  });
}

/** Renews a run's lease; false when the lease was lost (the run was taken back meanwhile). */
export async function heartbeat(
  db: Db,
  runId: number,
  workerId: string,
  leaseMs: number,
): Promise<boolean> {
  const result = await db
    .updateTable("runs")
    .set({ lease_expires_at: new Date(Date.now() + leaseMs) })
    .where("id", "=", runId)
    .where("worker_id", "=", workerId)
    .where("status", "=", "running")
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
