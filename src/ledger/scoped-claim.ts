import { sql } from "kysely";
import { scopesCollide, type UnscopedRule } from "./scopes.ts";
import type { Db } from "./transitions.ts";

/** Serialises scope-aware claims across workers sharing a PostgreSQL ledger ("nsclm"). */
const CLAIM_LOCK = 0x6e_73_63_6c;
/** How far down the queue a claim looks for an order that collides with no running one. */
const LOOKAHEAD = 200;

/** Of a queued order `o`: every order it depends on has landed. */
export const DEPENDENCIES_LANDED = sql`not exists (
  select 1 from jsonb_array_elements_text(o.depends_on) as dep(key)
  where not exists (select 1 from work_orders d where d.key = dep.key and d.status = 'landed'))`;

/**
 * The claimable orders (queued, every dependency landed) whose scope collides with no running
 * order's, most urgent first; the caller claims the first it can lock, in this transaction.
 *
 * Claims take a transaction-scoped advisory lock first: two workers claiming at once could
 * otherwise each see the other's pick still queued and start two colliding orders. Under the lock
 * each claim reads the running orders only after the previous claim committed (read committed
 * takes a fresh snapshot per statement). Every claim on every worker waits its turn for the lock,
 * so what is done under it is kept small: one statement reads the running orders' distinct scopes
 * (a thousand runs without a scope are one row, not a thousand) and the candidates together.
 */
export async function scopedCandidates(tx: Db, unscoped: UnscopedRule): Promise<number[]> {
  await sql`select pg_advisory_xact_lock(${CLAIM_LOCK})`.execute(tx);
  const { rows } = await sql<{ running: string[][]; candidates: [number, string[]][] }>`
    select
      (select coalesce(jsonb_agg(distinct scope), '[]') from work_orders
       where status = 'running') as running,
      (select coalesce(json_agg(json_build_array(c.id, c.scope) order by c.priority desc, c.id),
         '[]')
       from (
         select o.id, o.scope, o.priority from work_orders o
         where o.status = 'queued'
           and ${DEPENDENCIES_LANDED}
         order by o.priority desc, o.id
         limit ${LOOKAHEAD}) c) as candidates`.execute(tx);
  const running = rows[0]?.running ?? [];
  return (rows[0]?.candidates ?? [])
    .filter(([, scope]) => !running.some((r) => scopesCollide(scope, r, unscoped)))
    .map(([id]) => id);
}
