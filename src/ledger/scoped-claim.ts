import { sql } from "kysely";
import { scopesCollide, type UnscopedRule } from "./scopes.ts";
import type { Db } from "./transitions.ts";

/** Serialises scope-aware claims across workers sharing a PostgreSQL ledger ("nsclm"). */
const CLAIM_LOCK = 0x6e_73_63_6c;
/** How far down the queue a claim looks for an order that collides with no running one. */
const LOOKAHEAD = 200;

/**
 * The most urgent claimable order (queued, every dependency landed) whose scope collides with no
 * running order's, locked for this transaction; undefined when there is none.
 *
 * Claims take a transaction-scoped advisory lock first: two workers claiming at once could
 * otherwise each see the other's pick still queued and start two colliding orders. Under the lock
 * each claim reads the running orders only after the previous claim committed (read committed
 * takes a fresh snapshot per statement), and a claim is a few short statements, so the
 * serialisation costs little next to a run of minutes.
 */
export async function pickScopedOrder(tx: Db, unscoped: UnscopedRule): Promise<number | undefined> {
  await sql`select pg_advisory_xact_lock(${CLAIM_LOCK})`.execute(tx);
  const running = await tx
    .selectFrom("work_orders")
    .select("scope")
    .where("status", "=", "running")
    .execute();
  const candidates = await sql<{ id: number; scope: string[] }>`
    select o.id, o.scope from work_orders o
    where o.status = 'queued'
      and not exists (
        select 1 from jsonb_array_elements_text(o.depends_on) as dep(key)
        where not exists (
          select 1 from work_orders d where d.key = dep.key and d.status = 'landed'))
    order by o.priority desc, o.id
    limit ${LOOKAHEAD}`.execute(tx);
  for (const candidate of candidates.rows) {
    if (running.some((r) => scopesCollide(candidate.scope, r.scope, unscoped))) continue;
    // A person's control (cancel, approve, ...) may hold the row: then the next one.
    const locked = await sql<{ id: number }>`
      select id from work_orders where id = ${candidate.id} and status = 'queued'
      for update skip locked`.execute(tx);
    if (locked.rows.length > 0) return candidate.id;
  }
  return undefined;
}
