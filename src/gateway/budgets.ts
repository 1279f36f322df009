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
  message: string;
}

export interface Reservation {
  grant: Grant;
  amount: Spend;
  day: string;
}

class Account {
  spent: Spend = { usd: 0, tokens: 0 };
  reserved: Spend = { usd: 0, tokens: 0 };
}

/**
 * Budget accounting with reservations: a request's expected cost is reserved before it is
 * forwarded and settled to the real cost when it ends, so many concurrent requests cannot all
 * pass the check and overrun a budget together. A request is refused when what is spent, plus
 * what is reserved by requests in flight, plus its own reservation would pass a limit, so spending
 * stops at the budget within one request.
 */
export class Budgets {
  private readonly runs = new Map<number, Account>();
  private readonly orders = new Map<number, Account>();
  private total = new Account();
  private day = new Account();
  private dayKey = utcDay(new Date());

  constructor(
    readonly limits: BudgetLimits,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Spend recorded before this process started (from the ledger). */
  seed(seed: { totalUsd: number; dayUsd: number; order?: { id: number; usd: number } }): void {
    this.total.spent.usd = seed.totalUsd;
    this.day.spent.usd = seed.dayUsd;
    if (seed.order) this.account(this.orders, seed.order.id).spent.usd = seed.order.usd;
  }

  seedOrder(orderId: number, usd: number): void {
    this.account(this.orders, orderId).spent.usd = usd;
  }

  reserve(grant: Grant, amount: Spend): Reservation | BudgetRefusal {
    this.rollDay();
    const checks: [BudgetScope, Account, "usd" | "tokens", number | undefined][] = [
      ["run", this.account(this.runs, grant.runId), "tokens", this.limits.runTokens],
      ["run", this.account(this.runs, grant.runId), "usd", this.limits.runUsd],
      ["order", this.account(this.orders, grant.orderId), "usd", this.limits.orderUsd],
      ["day", this.day, "usd", this.limits.dayUsd],
      ["total", this.total, "usd", this.limits.totalUsd],
    ];
    for (const [scope, account, unit, limit] of checks) {
      if (limit === undefined) continue;
      const spent = account.spent[unit];
      const reserved = account.reserved[unit];
      if (spent + reserved + amount[unit] > limit) {
        return refusal(scope, unit, { spent, reserved, requested: amount[unit], limit }, grant);
      }
    }
    for (const account of this.accountsOf(grant)) add(account.reserved, amount);
    return { grant, amount, day: this.dayKey };
  }

  /** Turns a reservation into what was really spent. */
  settle(reservation: Reservation, actual: Spend): void {
    this.rollDay();
    for (const account of this.accountsOf(reservation.grant)) {
      if (account === this.day && reservation.day !== this.dayKey) continue;
      add(account.reserved, { usd: -reservation.amount.usd, tokens: -reservation.amount.tokens });
      add(account.spent, actual);
    }
  }

  spentBy(runId: number): Spend {
    return { ...(this.runs.get(runId)?.spent ?? { usd: 0, tokens: 0 }) };
  }

  forgetRun(runId: number): void {
    this.runs.delete(runId);
  }

  private accountsOf(grant: Grant): Account[] {
    return [
      this.account(this.runs, grant.runId),
      this.account(this.orders, grant.orderId),
      this.day,
      this.total,
    ];
  }

  private account(map: Map<number, Account>, id: number): Account {
    let account = map.get(id);
    if (!account) {
      account = new Account();
      map.set(id, account);
    }
    return account;
  }

  private rollDay(): void {
    const today = utcDay(this.now());
    if (today !== this.dayKey) {
      this.dayKey = today;
      this.day = new Account();
    }
  }
}

export function isRefusal(value: Reservation | BudgetRefusal): value is BudgetRefusal {
  return "scope" in value;
}

function refusal(
  scope: BudgetScope,
  unit: "usd" | "tokens",
  figures: { spent: number; reserved: number; requested: number; limit: number },
  grant: Grant,
): BudgetRefusal {
  const { spent, reserved, requested, limit } = figures;
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
    message: `budget exhausted: ${who} has spent ${fmt(spent)} of its ${fmt(limit)} budget, and this request needs up to ${fmt(requested)} more (${fmt(reserved)} is reserved by requests in flight)`,
  };
}

function add(target: Spend, amount: Spend): void {
  target.usd += amount.usd;
  target.tokens += amount.tokens;
}

function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}
