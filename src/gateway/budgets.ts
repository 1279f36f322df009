import type { BudgetAccount, BudgetBook, BudgetHold, BudgetVerdict } from "../ledger/index.ts";
import { budgetAccountKeys } from "../ledger/index.ts";
import type { Grant } from "./keys.ts";

/** Spending limits; any left out is unlimited. Money in US dollars. */
export interface BudgetLimits {
  runUsd?: number;
  runTokens?: number;
  orderUsd?: number;
  dayUsd?: number;
  totalUsd?: number;
}

export type BudgetScope = "run" | "order" | "day" | "total";

export interface Spend {
  usd: number;
  tokens: number;
}

/** Why a request was refused: which budget, what was spent and reserved, what the limit is. */
export interface BudgetRefusal {
  scope: BudgetScope;
  unit: "usd" | "tokens";
  spent: number;
  reserved: number;
  limit: number;
  /** Where the limit is set: the nightshift.toml key a person would change. */
  setting: string;
  message: string;
}

export interface Reservation {
  requestId: string;
  grant: Grant;
  amount: Spend;
  /** Exclusive mode: the in-memory accounts it holds. */
  keys?: string[];
}

export interface BudgetOptions {
  /**
   * The ledger belongs to this process alone (the embedded ledger, whose folder is locked): spend
   * is loaded from it once per account and reservations are kept in memory, which saves a ledger
   * transaction per request. Spend still reaches the ledger with every metered row, so budgets
   * hold across restarts and reissued keys all the same. With PostgreSQL, leave this off: other
   * gateways may share the budgets.
   */
  exclusive?: boolean;
  /** A reservation its gateway never metered (the process died) is released after this long. */
  reservationTtlMs?: number;
  /** Most reservations decided in one ledger transaction. */
  maxBatch?: number;
  now?: () => Date;
}

/** The nightshift.toml key behind each limit, so a refusal can say what to change. */
const SETTINGS: Record<keyof BudgetLimits, string> = {
  runTokens: "[budget] max_tokens_per_run",
  runUsd: "[budget] max_usd_per_run",
  orderUsd: "[budget] max_usd_per_order",
  dayUsd: "[budget] max_usd_per_day",
  totalUsd: "[budget] max_usd_total",
};

interface Waiting {
  hold: BudgetHold;
  grant: Grant;
  resolve: (value: Reservation | BudgetRefusal) => void;
  reject: (error: unknown) => void;
}

/**
 * Budget accounting with reservations kept in the ledger. A request's most possible cost (a
 * bound on its prompt plus its most output) is reserved before it is forwarded and released when
 * its metered row is written, in the same transaction that adds its real cost to the spend. A
 * request is refused when spent plus reserved plus its own reservation would pass a limit, so as
 * long as no reply costs more than it reserved, no budget is ever overrun, whatever the concurrency.
 *
 * Because spend and reservations live in the ledger, they survive a gateway restart and a run's
 * key being reissued, and gateways sharing one PostgreSQL enforce one budget between them. The
 * price is a ledger transaction per request; requests arriving together share one (group commit),
 * so under load it costs a fraction of a round trip each.
 */
export class Budgets {
  private readonly local = new Map<string, BudgetAccount | Promise<BudgetAccount>>();
  private queue: Waiting[] = [];
  private deciding = false;
  private readonly ttlMs: number;
  private readonly maxBatch: number;
  private readonly now: () => Date;

  constructor(
    readonly limits: BudgetLimits,
    private readonly ledger: Pick<BudgetBook, "reserveBudgets" | "budgetAccounts">,
    private readonly options: BudgetOptions = {},
  ) {
    this.ttlMs = options.reservationTtlMs ?? 3_600_000;
    this.maxBatch = options.maxBatch ?? 256;
    this.now = options.now ?? (() => new Date());
  }

  /** Reserves `amount` for one request, or says which budget refuses it. */
  reserve(
    grant: Grant,
    amount: Spend,
    requestId: string,
  ): Promise<Reservation | BudgetRefusal> | Reservation | BudgetRefusal {
    const rounded = { tokens: Math.ceil(amount.tokens), usd: amount.usd };
    const day = utcDay(this.now());
    const accounts = this.accountsFor(grant, day);
    // Nothing limited: nothing to reserve (spend is still counted when the row is metered).
    if (accounts.length === 0) return { requestId, grant, amount: rounded };
    const hold: BudgetHold = {
      requestId,
      accounts,
      tokens: rounded.tokens,
      usd: rounded.usd,
      day,
      ttlMs: this.ttlMs,
    };
    if (this.options.exclusive) return this.reserveLocally(hold, grant);
    return new Promise((resolve, reject) => {
      this.queue.push({ hold, grant, resolve, reject });
      if (!this.deciding) {
        this.deciding = true;
        // Let every request that arrives in this turn of the event loop join the batch.
        setImmediate(() => void this.decide());
      }
    });
  }

  /** Exclusive mode: the same decision as the ledger's, against accounts held in memory. */
  private reserveLocally(
    hold: BudgetHold,
    grant: Grant,
  ): Reservation | BudgetRefusal | Promise<Reservation | BudgetRefusal> {
    const accounts: BudgetAccount[] = [];
    const loading: Promise<BudgetAccount>[] = [];
    for (const { key } of hold.accounts) {
      let account = this.local.get(key);
      if (account === undefined) {
        account = this.ledger.budgetAccounts([key]).then((found) => {
          const loaded = found.get(key) as BudgetAccount;
          // Reservations live in memory in this mode; the ledger holds none for this process.
          loaded.reservedTokens = 0;
          loaded.reservedUsd = 0;
          this.local.set(key, loaded);
          return loaded;
        });
        account.catch(() => this.local.delete(key));
        this.local.set(key, account);
      }
      if (account instanceof Promise) loading.push(account);
      else accounts.push(account);
    }
    if (loading.length > 0) {
      return Promise.all(loading).then(() => this.reserveLocally(hold, grant));
    }
    for (const [i, limit] of hold.accounts.entries()) {
      const account = accounts[i] as BudgetAccount;
      for (const unit of ["tokens", "usd"] as const) {
        const max = limit[unit];
        if (max === undefined) continue;
        const spent = unit === "tokens" ? account.spentTokens : account.spentUsd;
        const reserved = unit === "tokens" ? account.reservedTokens : account.reservedUsd;
        if (spent + reserved + hold[unit] > max) {
          return this.refusal(
            {
              admitted: false,
              key: limit.key,
              unit,
              spent,
              reserved,
              limit: max,
              requested: hold[unit],
            },
            grant,
          );
        }
      }
    }
    for (const account of accounts) {
      account.reservedTokens += hold.tokens;
      account.reservedUsd += hold.usd;
    }
    return {
      requestId: hold.requestId,
      grant,
      amount: hold,
      keys: hold.accounts.map((a) => a.key),
    };
  }

  /**
   * A request ended: in exclusive mode its reservation becomes its real spend in memory (the
   * ledger gets the same from its metered row). In shared mode the ledger does this itself.
   */
  settle(reservation: Reservation, actual: Spend): void {
    if (!this.options.exclusive || !reservation.keys) return;
    for (const key of reservation.keys) {
      const account = this.local.get(key);
      if (!account || account instanceof Promise) continue;
      account.reservedTokens = Math.max(0, account.reservedTokens - reservation.amount.tokens);
      account.reservedUsd = Math.max(0, account.reservedUsd - reservation.amount.usd);
      account.spentTokens += actual.tokens;
      account.spentUsd += actual.usd;
    }
  }

  private async decide(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      let verdicts: BudgetVerdict[];
      try {
        verdicts = await this.ledger.reserveBudgets(batch.map((w) => w.hold));
      } catch (error) {
        for (const w of batch) w.reject(error);
        continue;
      }
      batch.forEach((w, i) => {
        const verdict = verdicts[i] as BudgetVerdict;
        w.resolve(
          verdict.admitted
            ? { requestId: w.hold.requestId, grant: w.grant, amount: w.hold }
            : this.refusal(verdict, w.grant),
        );
      });
    }
    this.deciding = false;
  }

  private accountsFor(grant: Grant, day: string): BudgetHold["accounts"] {
    const keys = budgetAccountKeys(grant, day);
    const l = this.limits;
    const accounts: BudgetHold["accounts"] = [];
    if (keys.run !== undefined && (l.runTokens !== undefined || l.runUsd !== undefined)) {
      accounts.push({ key: keys.run, tokens: l.runTokens, usd: l.runUsd });
    }
    if (keys.order !== undefined && l.orderUsd !== undefined) {
      accounts.push({ key: keys.order, usd: l.orderUsd });
    }
    if (l.dayUsd !== undefined) accounts.push({ key: keys.day, usd: l.dayUsd });
    if (l.totalUsd !== undefined) accounts.push({ key: keys.total, usd: l.totalUsd });
    return accounts;
  }

  private refusal(
    verdict: Extract<BudgetVerdict, { admitted: false }>,
    grant: Grant,
  ): BudgetRefusal {
    const scope = verdict.key.split(":")[0] as BudgetScope;
    const { unit, spent, reserved, limit, requested } = verdict;
    const setting =
      SETTINGS[
        scope === "run"
          ? unit === "tokens"
            ? "runTokens"
            : "runUsd"
          : scope === "order"
            ? "orderUsd"
            : scope === "day"
              ? "dayUsd"
              : "totalUsd"
      ];
    const who =
      scope === "run"
        ? `run ${grant.runId}`
        : scope === "order"
          ? `work order WO-${grant.orderId}`
          : scope === "day"
            ? "the factory today (UTC)"
            : "the factory in total";
    const fmt = (n: number) => (unit === "usd" ? `$${n.toFixed(4)}` : `${Math.round(n)} tokens`);
    return {
      scope,
      unit,
      spent,
      reserved,
      limit,
      setting,
      message: `budget exhausted: ${who} has spent ${fmt(spent)} of its ${fmt(limit)} budget (${setting} in nightshift.toml), and this request needs up to ${fmt(requested)} more (${fmt(reserved)} is reserved by requests in flight); raise ${setting} to let it go on`,
    };
  }
}

export function isRefusal(value: Reservation | BudgetRefusal): value is BudgetRefusal {
  return "scope" in value;
}

let dayCache = { from: 0, to: 0, day: "" };

/** The UTC day of `date` as YYYY-MM-DD (cached for the day: asked once per request). */
function utcDay(date: Date): string {
  const t = date.getTime();
  if (t >= dayCache.from && t < dayCache.to) return dayCache.day;
  const from = t - (t % 86_400_000);
  dayCache = { from, to: from + 86_400_000, day: date.toISOString().slice(0, 10) };
  return dayCache.day;
}
