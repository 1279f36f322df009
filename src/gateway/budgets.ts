import type {
  BudgetAccount,
  BudgetBook,
  BudgetHold,
  BudgetLimitBook,
  BudgetLimitName,
  BudgetLimitOverride,
  BudgetVerdict,
} from "../ledger/index.ts";
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
  /** Where the limit is set: the nightshift.toml key, or the live override of it. */
  setting: string;
  /** "override": set live by a person (console, `nightshift budget set`); else nightshift.toml's. */
  source: "override" | "nightshift.toml";
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
  /**
   * Where people override the limits live. Without it, the limits given are the only ones. With
   * it, they are nightshift.toml's, and the overrides go over them: an exclusive gateway notices
   * the changes made through this (its only) ledger object at once; a shared one compares the
   * overrides' version in the ledger before each batch it decides.
   */
  overrides?: Pick<BudgetLimitBook, "version" | "overrides" | "changes">;
}

/** The nightshift.toml key behind each limit, so a refusal can say what to change. */
const NAMES: Record<keyof BudgetLimits, BudgetLimitName> = {
  runTokens: "max_tokens_per_run",
  runUsd: "max_usd_per_run",
  orderUsd: "max_usd_per_order",
  dayUsd: "max_usd_per_day",
  totalUsd: "max_usd_total",
};

/** The limits in force, and which of them people overrode live. */
interface InForce {
  limits: BudgetLimits;
  overridden: Partial<Record<keyof BudgetLimits, BudgetLimitOverride>>;
  /** The overrides' version in the ledger ("" before the first read). */
  version: string;
  /** The override book's `changes` when read. */
  changes: number;
}

interface Waiting {
  grant: Grant;
  amount: Spend;
  requestId: string;
  day: string;
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
  private inForce: InForce;
  private refreshing: Promise<void> | undefined;

  constructor(
    /** nightshift.toml's limits (or the only ones, without `options.overrides`). */
    private readonly configured: BudgetLimits,
    private readonly ledger: Pick<BudgetBook, "reserveBudgets" | "budgetAccounts">,
    private readonly options: BudgetOptions = {},
  ) {
    this.ttlMs = options.reservationTtlMs ?? 3_600_000;
    this.maxBatch = options.maxBatch ?? 256;
    this.now = options.now ?? (() => new Date());
    this.inForce = { limits: configured, overridden: {}, version: "", changes: -1 };
  }

  /** The limits in force as last read: nightshift.toml's with people's overrides over them. */
  get limits(): BudgetLimits {
    return this.inForce.limits;
  }

  /**
   * Reads the overrides again if they may have changed: exclusive, when this process changed
   * them (no other can); shared, when their version in the ledger moved (one small read).
   */
  private async refresh(checkVersion: boolean): Promise<void> {
    const source = this.options.overrides;
    if (!source) return;
    const changes = source.changes;
    if (checkVersion && this.inForce.version !== "") {
      if ((await source.version()) === this.inForce.version) {
        this.inForce.changes = changes;
        return;
      }
    }
    const read = await source.overrides();
    const limits: BudgetLimits = { ...this.configured };
    const overridden: InForce["overridden"] = {};
    for (const [key, name] of Object.entries(NAMES) as [keyof BudgetLimits, BudgetLimitName][]) {
      const override = read.overrides[name];
      if (!override) continue;
      limits[key] = override.value;
      overridden[key] = override;
    }
    this.inForce = { limits, overridden, version: read.version, changes };
  }

  /** Exclusive mode: whether the overrides must be read before deciding. */
  private stale(): boolean {
    const source = this.options.overrides;
    return source !== undefined && source.changes !== this.inForce.changes;
  }

  /** One refresh at a time; requests arriving meanwhile wait for the same one. */
  private refreshOnce(checkVersion: boolean): Promise<void> {
    this.refreshing ??= this.refresh(checkVersion).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Reserves `amount` for one request, or says which budget refuses it. */
  reserve(
    grant: Grant,
    amount: Spend,
    requestId: string,
  ): Promise<Reservation | BudgetRefusal> | Reservation | BudgetRefusal {
    const rounded = { tokens: Math.ceil(amount.tokens), usd: amount.usd };
    const day = utcDay(this.now());
    if (this.options.exclusive) {
      if (this.stale()) {
        return this.refreshOnce(false).then(() =>
          this.reserveExclusive(grant, rounded, requestId, day),
        );
      }
      return this.reserveExclusive(grant, rounded, requestId, day);
    }
    if (!this.options.overrides) {
      // Nothing limited, and no override can change that: nothing to reserve (spend is still
      // counted when the row is metered).
      if (this.accountsFor(grant, day).length === 0) return { requestId, grant, amount: rounded };
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ grant, amount: rounded, requestId, day, resolve, reject });
      if (!this.deciding) {
        this.deciding = true;
        // Let every request that arrives in this turn of the event loop join the batch.
        setImmediate(() => void this.decide());
      }
    });
  }

  private reserveExclusive(
    grant: Grant,
    amount: Spend,
    requestId: string,
    day: string,
  ): Reservation | BudgetRefusal | Promise<Reservation | BudgetRefusal> {
    const hold = this.holdFor(grant, amount, requestId, day);
    // Nothing limited: nothing to reserve (spend is still counted when the row is metered).
    if (!hold) return { requestId, grant, amount };
    return this.reserveLocally(hold, grant);
  }

  private holdFor(
    grant: Grant,
    amount: Spend,
    requestId: string,
    day: string,
  ): BudgetHold | undefined {
    const accounts = this.accountsFor(grant, day);
    if (accounts.length === 0) return undefined;
    return { requestId, accounts, tokens: amount.tokens, usd: amount.usd, day, ttlMs: this.ttlMs };
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
      const waiting = this.queue.splice(0, this.maxBatch);
      let verdicts: BudgetVerdict[];
      const batch: { w: Waiting; hold: BudgetHold }[] = [];
      try {
        // Another gateway (or a person) may have changed the limits: one small read per batch.
        await this.refreshOnce(true);
        for (const w of waiting) {
          const hold = this.holdFor(w.grant, w.amount, w.requestId, w.day);
          if (hold) batch.push({ w, hold });
          else w.resolve({ requestId: w.requestId, grant: w.grant, amount: w.amount });
        }
        verdicts = await this.ledger.reserveBudgets(batch.map((b) => b.hold));
      } catch (error) {
        for (const w of waiting) w.reject(error);
        continue;
      }
      batch.forEach(({ w, hold }, i) => {
        const verdict = verdicts[i] as BudgetVerdict;
        w.resolve(
          verdict.admitted
            ? { requestId: w.requestId, grant: w.grant, amount: hold }
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
    const key: keyof BudgetLimits =
      scope === "run"
        ? unit === "tokens"
          ? "runTokens"
          : "runUsd"
        : scope === "order"
          ? "orderUsd"
          : scope === "day"
            ? "dayUsd"
            : "totalUsd";
    const name = NAMES[key];
    const override = this.inForce.overridden[key];
    const who =
      scope === "run"
        ? `run ${grant.runId}`
        : scope === "order"
          ? `work order WO-${grant.orderId}`
          : scope === "day"
            ? "the factory today (UTC)"
            : "the factory in total";
    const fmt = (n: number) => (unit === "usd" ? `$${n.toFixed(4)}` : `${Math.round(n)} tokens`);
    const needs = `this request needs up to ${fmt(requested)} more (${fmt(reserved)} is reserved by requests in flight)`;
    const figures = { scope, unit, spent, reserved, limit };
    if (override) {
      const configured = this.configured[key];
      const setting = `the override of [budget] ${name}`;
      return {
        ...figures,
        setting,
        source: "override",
        message: `budget exhausted: ${who} has spent ${fmt(spent)} of its ${fmt(limit)} budget (${setting}, set by ${override.setBy} at ${override.setAt.toISOString()} in the console or with \`nightshift budget set\`; nightshift.toml ${configured === undefined ? "sets none" : `says ${fmt(configured)}`}), and ${needs}; raise it (\`nightshift budget set ${name} AMOUNT\` or the console's budget page) or clear the override (\`nightshift budget clear ${name}\`) to let it go on`,
      };
    }
    const setting = `[budget] ${name}`;
    return {
      ...figures,
      setting,
      source: "nightshift.toml",
      message: `budget exhausted: ${who} has spent ${fmt(spent)} of its ${fmt(limit)} budget (${setting} in nightshift.toml), and ${needs}; raise ${setting} to let it go on (or live, without a restart: \`nightshift budget set ${name} AMOUNT\`)`,
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
