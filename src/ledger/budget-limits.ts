import { type Kysely, sql } from "kysely";
import { NightshiftError } from "../errors/index.ts";
import { BUDGET_LIMIT_NAMES, type BudgetLimitName, isTokenLimit } from "./budget-limit-names.ts";
import { recordControl } from "./order-controls.ts";
import type { Database } from "./schema.ts";

/** Limits as nightshift.toml's [budget] section gives them; a limit left out is unlimited. */
export type BudgetSettings = Partial<Record<BudgetLimitName, number>>;

export interface BudgetLimitOverride {
  value: number;
  setBy: string;
  setAt: Date;
}

/** The overrides people set, and the version they were read at (it goes up with every change). */
export interface BudgetLimitOverrides {
  version: string;
  overrides: Partial<Record<BudgetLimitName, BudgetLimitOverride>>;
}

/** One limit as the gateways apply it, and where it comes from. */
export interface EffectiveBudgetLimit {
  name: BudgetLimitName;
  /** null: unlimited. */
  value: number | null;
  source: "override" | "nightshift.toml" | "unset";
  /** nightshift.toml's value, which applies again when the override is cleared. */
  configured: number | null;
  override: BudgetLimitOverride | null;
}

/** A limit with what is spent against it now. */
export interface BudgetLimitStanding extends EffectiveBudgetLimit {
  unit: "usd" | "tokens";
  /**
   * Spent against it: today's or the total spend; for the per-run and per-order limits, the most
   * any running run (order) has spent. null when nothing runs.
   */
  spent: number | null;
  /** Whose spend `spent` is: "today (UTC)", "in total", "run 12", "WO-3". */
  spentBy: string | null;
}

/** Largest values accepted: beyond them a limit is a typo, not a budget. */
const MAX_USD = 1_000_000_000;
const MAX_TOKENS = 1_000_000_000_000;

/** A limit's name from a person's input (CLI argument, HTTP body), or an error naming the valid ones. */
export function budgetLimitName(raw: string): BudgetLimitName {
  const name = raw.trim().replace(/^\[budget\]\s*/, "");
  if ((BUDGET_LIMIT_NAMES as readonly string[]).includes(name)) return name as BudgetLimitName;
  throw new NightshiftError(
    "budget_limit_unknown",
    `there is no budget limit ${JSON.stringify(raw)}`,
    {
      hint: `the limits are ${BUDGET_LIMIT_NAMES.join(", ")} (the [budget] keys of nightshift.toml); nothing was changed`,
    },
  );
}

/** Checks a limit's new value: a finite, non-negative number; whole for token limits. */
export function checkBudgetLimitValue(name: BudgetLimitName, value: number): number {
  const tokens = isTokenLimit(name);
  const max = tokens ? MAX_TOKENS : MAX_USD;
  const what = tokens ? "a whole number of tokens" : "an amount of US dollars";
  const problem = !Number.isFinite(value)
    ? "is not a number"
    : value < 0
      ? "is negative"
      : tokens && !Number.isInteger(value)
        ? "is not a whole number"
        : value > max
          ? `is more than ${max}`
          : undefined;
  if (problem) {
    throw new NightshiftError(
      "budget_limit_invalid",
      `${name} = ${String(value)} ${problem}: give ${what} from 0 to ${max}`,
      {
        hint: `e.g. \`nightshift budget set ${name} ${tokens ? "200000" : "5"}\`; to go back to nightshift.toml's value, clear the override (\`nightshift budget clear ${name}\`); nothing was changed`,
      },
    );
  }
  return value;
}

/** A value typed by a person ("5", "2.50", "$3", "200000", "200_000"), checked. */
export function parseBudgetLimitValue(name: BudgetLimitName, raw: string): number {
  const cleaned = raw.trim().replace(/^\$/, "").replace(/_/g, "");
  const value = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(cleaned)
    ? Number(cleaned)
    : Number.NaN;
  if (Number.isNaN(value)) {
    throw new NightshiftError(
      "budget_limit_invalid",
      `${name} = ${JSON.stringify(raw)} is not a number: give ${isTokenLimit(name) ? "a whole number of tokens" : "an amount of US dollars"}`,
      {
        hint: `e.g. \`nightshift budget set ${name} ${isTokenLimit(name) ? "200000" : "5"}\`; nothing was changed`,
      },
    );
  }
  return checkBudgetLimitValue(name, value);
}

/**
 * The factory's spending limits that people override live, over nightshift.toml's. Each change is
 * one transaction that writes the override, bumps the version the gateways watch, and records the
 * control with who made it.
 */
export class BudgetLimitBook {
  /**
   * Changes made through this ledger object. With the embedded ledger (one process alone) these
   * are all the changes there are, so a gateway in the same process notices them without asking
   * the database.
   */
  changes = 0;

  constructor(private readonly db: Kysely<Database>) {}

  /** The version of the overrides: one small read, which gateways sharing PostgreSQL make per batch. */
  async version(): Promise<string> {
    const row = await this.db
      .selectFrom("budget_limits_version")
      .select("version")
      .executeTakeFirstOrThrow();
    return String(row.version);
  }

  async overrides(): Promise<BudgetLimitOverrides> {
    const rows = await sql<{
      version: string;
      name: string | null;
      value: number | null;
      set_by: string | null;
      set_at: Date | string | null;
    }>`
      select v.version::text as version, l.name, l.value, l.set_by, l.set_at
      from budget_limits_version v left join budget_limits l on true`.execute(this.db);
    const overrides: BudgetLimitOverrides["overrides"] = {};
    for (const r of rows.rows) {
      if (r.name === null || r.value === null) continue;
      overrides[r.name as BudgetLimitName] = {
        value: Number(r.value),
        setBy: r.set_by ?? "",
        setAt: new Date(r.set_at ?? 0),
      };
    }
    return { version: rows.rows[0]?.version ?? "0", overrides };
  }

  /** Sets a limit's override; recorded in `controls` as action "budget-limit". */
  async set(
    rawName: string,
    value: number,
    actor: string,
    note = "",
  ): Promise<BudgetLimitOverride & { name: BudgetLimitName }> {
    const name = budgetLimitName(rawName);
    checkBudgetLimitValue(name, value);
    const row = await this.db.transaction().execute(async (tx) => {
      const before = await tx
        .selectFrom("budget_limits")
        .select("value")
        .where("name", "=", name)
        .forUpdate()
        .executeTakeFirst();
      const row = await tx
        .insertInto("budget_limits")
        .values({ name, value, set_by: actor, set_at: new Date() })
        .onConflict((oc) =>
          oc.column("name").doUpdateSet({ value, set_by: actor, set_at: new Date() }),
        )
        .returningAll()
        .executeTakeFirstOrThrow();
      await bumpVersion(tx);
      await recordControl(tx, {
        action: "budget-limit",
        actor,
        note,
        details: { limit: name, from: before ? Number(before.value) : null, to: value },
      });
      return row;
    });
    this.changes++;
    return { name, value: Number(row.value), setBy: row.set_by, setAt: row.set_at };
  }

  /** Clears a limit's override: nightshift.toml's value applies again. */
  async clear(rawName: string, actor: string, note = ""): Promise<void> {
    const name = budgetLimitName(rawName);
    await this.db.transaction().execute(async (tx) => {
      const removed = await tx
        .deleteFrom("budget_limits")
        .where("name", "=", name)
        .returning("value")
        .executeTakeFirst();
      if (!removed) {
        throw new NightshiftError(
          "budget_override_not_found",
          `${name} has no override to clear: nightshift.toml's value applies already`,
          {
            hint: "see `nightshift budget` for the limits and where each is set; nothing was changed",
          },
        );
      }
      await bumpVersion(tx);
      await recordControl(tx, {
        action: "budget-limit",
        actor,
        note,
        details: { limit: name, from: Number(removed.value), to: null, cleared: true },
      });
    });
    this.changes++;
  }

  /** Every limit as applied: the override if set, else nightshift.toml's value. */
  async effective(configured: BudgetSettings): Promise<EffectiveBudgetLimit[]> {
    return effectiveLimits(configured, (await this.overrides()).overrides);
  }

  /** Every limit with what is spent against it now (see BudgetLimitStanding). */
  async standing(configured: BudgetSettings, now = new Date()): Promise<BudgetLimitStanding[]> {
    const limits = await this.effective(configured);
    const day = `day:${now.toISOString().slice(0, 10)}`;
    const rows = await sql<{ key: string; spent_tokens: number; spent_usd: number }>`
      select key, spent_tokens::float8 as spent_tokens, spent_usd from budget_accounts
      where key in ('total', ${day})
        or key in (select 'run:' || id from runs where status = 'running')
        or key in (select 'order:' || id from work_orders where status = 'running')`.execute(
      this.db,
    );
    const accounts = rows.rows.map((r) => ({
      key: r.key,
      tokens: Number(r.spent_tokens),
      usd: Number(r.spent_usd),
    }));
    const most = (prefix: "run" | "order", unit: "tokens" | "usd") => {
      const mine = accounts.filter((a) => a.key.startsWith(`${prefix}:`));
      if (mine.length === 0) return { spent: null, spentBy: null };
      const top = mine.reduce((a, b) => (b[unit] > a[unit] ? b : a));
      const id = top.key.slice(prefix.length + 1);
      return { spent: top[unit], spentBy: prefix === "run" ? `run ${id}` : `WO-${id}` };
    };
    const of = (key: string) => accounts.find((a) => a.key === key)?.usd ?? 0;
    return limits.map((limit): BudgetLimitStanding => {
      const unit = isTokenLimit(limit.name) ? "tokens" : "usd";
      const spend =
        limit.name === "max_usd_per_day"
          ? { spent: of(day), spentBy: "today (UTC)" }
          : limit.name === "max_usd_total"
            ? { spent: of("total"), spentBy: "in total" }
            : most(limit.name === "max_usd_per_order" ? "order" : "run", unit);
      return { ...limit, unit, ...spend };
    });
  }
}

/** Applies overrides over nightshift.toml's values. */
export function effectiveLimits(
  configured: BudgetSettings,
  overrides: BudgetLimitOverrides["overrides"],
): EffectiveBudgetLimit[] {
  return BUDGET_LIMIT_NAMES.map((name) => {
    const override = overrides[name] ?? null;
    const fromToml = configured[name] ?? null;
    return {
      name,
      value: override ? override.value : fromToml,
      source: override ? "override" : fromToml === null ? "unset" : "nightshift.toml",
      configured: fromToml,
      override,
    };
  });
}

async function bumpVersion(tx: Kysely<Database>): Promise<void> {
  await sql`update budget_limits_version set version = version + 1`.execute(tx);
}
