import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.ts";
import type { Db } from "./transitions.ts";

/** One budget scope's standing: what is spent, and what requests in flight may still spend. */
export interface BudgetAccount {
  key: string;
  spentTokens: number;
  spentUsd: number;
  reservedTokens: number;
  reservedUsd: number;
}

/** A request's claim on its budgets: the accounts it is checked against, each with its limits. */
export interface BudgetHold {
  requestId: string;
  accounts: { key: string; tokens?: number | undefined; usd?: number | undefined }[];
  /** Whole tokens. */
  tokens: number;
  usd: number;
  /** The UTC day (YYYY-MM-DD) its spend is charged to. */
  day: string;
  /** After this long unmetered, the reservation is released (its gateway is presumed gone). */
  ttlMs: number;
}

export type BudgetVerdict =
  | { admitted: true }
  | {
      admitted: false;
      key: string;
      unit: "tokens" | "usd";
      spent: number;
      reserved: number;
      limit: number;
      requested: number;
    };

/**
 * The accounts a model request's spend is charged to. The ledger owns this naming: the gateway
 * reserves on these keys, and recordModelRequests charges the same ones.
 */
export function budgetAccountKeys(
  grant: { runId: number | null; orderId: number | null },
  day: string,
) {
  return {
    run: grant.runId === null ? undefined : `run:${grant.runId}`,
    order: grant.orderId === null ? undefined : `order:${grant.orderId}`,
    day: `day:${day}`,
    total: "total",
  };
}

/**
 * Budget accounts and reservations: what the gateway checks before it forwards a request, kept in
 * the ledger so budgets survive restarts and hold across gateways sharing PostgreSQL.
 */
export class BudgetBook {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Reserves budget for requests about to be forwarded, in order, in one transaction: each is
   * admitted only if, on every account it names, what is spent plus what is reserved plus its own
   * amount stays within the limit. The accounts are locked (in key order, so two gateways cannot
   * deadlock) for the whole decision, so gateways sharing one PostgreSQL cannot both admit the
   * request that would overrun a budget.
   */
  async reserveBudgets(holds: BudgetHold[]): Promise<BudgetVerdict[]> {
    if (holds.length === 0) return [];
    const keys = [...new Set(holds.flatMap((h) => h.accounts.map((a) => a.key)))].sort();
    return this.db.transaction().execute(async (tx) => {
      const accounts = await lockAccounts(tx, keys);
      const changed = new Set<string>();
      const admitted: BudgetHold[] = [];
      const verdicts = holds.map((hold): BudgetVerdict => {
        for (const limit of hold.accounts) {
          const account = accounts.get(limit.key) as BudgetAccount;
          for (const unit of ["tokens", "usd"] as const) {
            const max = limit[unit];
            if (max === undefined) continue;
            const spent = unit === "tokens" ? account.spentTokens : account.spentUsd;
            const reserved = unit === "tokens" ? account.reservedTokens : account.reservedUsd;
            if (spent + reserved + hold[unit] > max) {
              return {
                admitted: false,
                key: limit.key,
                unit,
                spent,
                reserved,
                limit: max,
                requested: hold[unit],
              };
            }
          }
        }
        for (const limit of hold.accounts) {
          const account = accounts.get(limit.key) as BudgetAccount;
          account.reservedTokens += hold.tokens;
          account.reservedUsd += hold.usd;
          changed.add(limit.key);
        }
        admitted.push(hold);
        return { admitted: true };
      });
      if (admitted.length === 0) return verdicts;
      const updates = [...changed].map((key) => {
        const a = accounts.get(key) as BudgetAccount;
        return { key, reserved_tokens: a.reservedTokens, reserved_usd: a.reservedUsd };
      });
      await sql`
        update budget_accounts b
        set reserved_tokens = r.reserved_tokens, reserved_usd = r.reserved_usd
        from jsonb_to_recordset(${JSON.stringify(updates)}::jsonb)
          as r(key text, reserved_tokens bigint, reserved_usd double precision)
        where b.key = r.key`.execute(tx);
      const now = Date.now();
      const reservations = admitted.map((h) => ({
        request_id: h.requestId,
        accounts: h.accounts.map((a) => a.key),
        tokens: h.tokens,
        usd: h.usd,
        day: h.day,
        expires_at: new Date(now + h.ttlMs).toISOString(),
      }));
      await sql`
        insert into budget_reservations (request_id, accounts, tokens, usd, day, expires_at)
        select * from jsonb_to_recordset(${JSON.stringify(reservations)}::jsonb)
          as r(request_id text, accounts jsonb, tokens bigint, usd double precision, day text,
            expires_at timestamptz)
        on conflict (request_id) do nothing`.execute(tx);
      return verdicts;
    });
  }

  /**
   * Releases reservations whose gateway never metered them (it died, say) once they expire, so a
   * crashed process cannot hold a budget forever. Returns how many were released.
   */
  async releaseExpiredReservations(now = new Date()): Promise<number> {
    return this.db.transaction().execute(async (tx) => {
      const expired = await sql<{ request_id: string }>`
        select request_id from budget_reservations where expires_at < ${now.toISOString()}::timestamptz
        order by request_id limit 1000`.execute(tx);
      if (expired.rows.length === 0) return 0;
      await settleBudgets(
        tx,
        expired.rows.map((r) => ({
          request_id: r.request_id,
          run_id: null,
          order_id: null,
          input_tokens: 0,
          output_tokens: 0,
          cost_usd: 0,
        })),
      );
      return expired.rows.length;
    });
  }

  /** The budget accounts by key (missing ones are empty). */
  async budgetAccounts(keys: string[]): Promise<Map<string, BudgetAccount>> {
    const rows = await sql<AccountRow>`
      select key, spent_tokens::float8 as spent_tokens, spent_usd,
        reserved_tokens::float8 as reserved_tokens, reserved_usd
      from budget_accounts
      where key in (select jsonb_array_elements_text(${JSON.stringify(keys)}::jsonb))`.execute(
      this.db,
    );
    const found = new Map(rows.rows.map((r) => [r.key, toAccount(r)]));
    for (const key of keys) if (!found.has(key)) found.set(key, emptyAccount(key));
    return found;
  }

  /** Spend so far, to seed the gateway's budgets after a restart. */
}

interface AccountRow {
  key: string;
  spent_tokens: number;
  spent_usd: number;
  reserved_tokens: number;
  reserved_usd: number;
}

function toAccount(r: AccountRow): BudgetAccount {
  return {
    key: r.key,
    spentTokens: Number(r.spent_tokens),
    spentUsd: Number(r.spent_usd),
    reservedTokens: Number(r.reserved_tokens),
    reservedUsd: Number(r.reserved_usd),
  };
}

function emptyAccount(key: string): BudgetAccount {
  return { key, spentTokens: 0, spentUsd: 0, reservedTokens: 0, reservedUsd: 0 };
}

/** Creates missing accounts and locks them all, in key order, for the rest of the transaction. */
async function lockAccounts(tx: Db, keys: string[]): Promise<Map<string, BudgetAccount>> {
  const json = JSON.stringify(keys);
  await sql`
    insert into budget_accounts (key)
    select k from jsonb_array_elements_text(${json}::jsonb) as t(k) order by k
    on conflict (key) do nothing`.execute(tx);
  const rows = await sql<AccountRow>`
    select key, spent_tokens::float8 as spent_tokens, spent_usd,
      reserved_tokens::float8 as reserved_tokens, reserved_usd
    from budget_accounts
    where key in (select jsonb_array_elements_text(${json}::jsonb))
    order by key
    for update`.execute(tx);
  return new Map(rows.rows.map((r) => [r.key, toAccount(r)]));
}

const utcDay = (date: Date) => date.toISOString().slice(0, 10);

/**
 * Charges metered rows to their budget accounts and releases their reservations, in the caller's
 * transaction. A row is charged to the day its reservation was made on (or today without one).
 */
export async function settleBudgets(
  tx: Db,
  rows: {
    request_id: string;
    run_id: number | null;
    order_id: number | null;
    input_tokens: number;
    output_tokens: number;
    cost_usd: number;
  }[],
): Promise<void> {
  if (rows.length === 0) return;
  const released = await sql<ReleasedReservation & { request_id: string }>`
    delete from budget_reservations
    where request_id in (select jsonb_array_elements_text(${JSON.stringify(rows.map((r) => r.request_id))}::jsonb))
    returning request_id, accounts, tokens::float8 as tokens, usd, day`.execute(tx);
  const dayOf = new Map<string, string>();
  for (const r of released.rows) dayOf.set(r.request_id, r.day);
  await settleSpend(
    tx,
    released.rows,
    rows.map((row) => ({
      run_id: row.run_id,
      order_id: row.order_id,
      day: dayOf.get(row.request_id) ?? null,
      tokens: row.input_tokens + row.output_tokens,
      cost_usd: row.cost_usd,
    })),
  );
}

/** A reservation released from the ledger: what it held, on which accounts. */
export interface ReleasedReservation {
  accounts: string[] | string;
  tokens: number | string;
  usd: number;
  day: string;
}

/** Metered spend to charge, by run, order and the day of its reservation (null: none, today). */
export interface SpendGroup {
  run_id: number | null;
  order_id: number | null;
  day: string | null;
  tokens: number;
  cost_usd: number;
}

/**
 * Charges spend to its budget accounts and takes released reservations off them, in the caller's
 * transaction: the part of settling that follows the reservations' release.
 */
export async function settleSpend(
  tx: Db,
  released: readonly ReleasedReservation[],
  spent: readonly SpendGroup[],
): Promise<void> {
  const deltas = new Map<string, { st: number; su: number; rt: number; ru: number }>();
  const delta = (key: string) => {
    let d = deltas.get(key);
    if (!d) {
      d = { st: 0, su: 0, rt: 0, ru: 0 };
      deltas.set(key, d);
    }
    return d;
  };
  for (const r of released) {
    const accounts =
      typeof r.accounts === "string" ? (JSON.parse(r.accounts) as string[]) : r.accounts;
    for (const key of accounts) {
      const d = delta(key);
      d.rt -= Number(r.tokens);
      d.ru -= Number(r.usd);
    }
  }
  const today = utcDay(new Date());
  for (const group of spent) {
    const tokens = Number(group.tokens);
    const cost = Number(group.cost_usd);
    if (tokens === 0 && cost === 0) continue;
    const keys = budgetAccountKeys(
      { runId: group.run_id, orderId: group.order_id },
      group.day ?? today,
    );
    for (const key of [keys.run, keys.order, keys.day, keys.total]) {
      if (key === undefined) continue;
      const d = delta(key);
      d.st += tokens;
      d.su += cost;
    }
  }
  if (deltas.size === 0) return;
  const values = [...deltas]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, d]) => ({ key, st: d.st, su: d.su, rt: d.rt, ru: d.ru }));
  // One statement creates the accounts missing and charges them all, in key order (as
  // reserveBudgets locks them, so that the two never wait on each other in a cycle): one round trip
  // to the ledger instead of three per metering batch. An account gets reservations only once it
  // exists (reserveBudgets creates it) and is never deleted, so one created here releases none.
  await sql`
    insert into budget_accounts as b (key, spent_tokens, spent_usd, reserved_tokens, reserved_usd)
    select r.key, r.st, r.su, r.rt, r.ru
    from jsonb_to_recordset(${JSON.stringify(values)}::jsonb)
      as r(key text, st bigint, su double precision, rt bigint, ru double precision)
    order by r.key
    on conflict (key) do update set
      spent_tokens = b.spent_tokens + excluded.spent_tokens,
      spent_usd = b.spent_usd + excluded.spent_usd,
      reserved_tokens = greatest(0, b.reserved_tokens + excluded.reserved_tokens),
      reserved_usd = greatest(0, b.reserved_usd + excluded.reserved_usd)`.execute(tx);
}
