/**
 * The factory's spending limits by their nightshift.toml names ([budget] section). A person may
 * override each live (console, `nightshift budget set`). Kept free of imports: the console's UI
 * bundles it through the API's schema.
 */
export const BUDGET_LIMIT_NAMES = [
  "max_tokens_per_run",
  "max_usd_per_run",
  "max_usd_per_order",
  "max_usd_per_day",
  "max_usd_total",
] as const;

export type BudgetLimitName = (typeof BUDGET_LIMIT_NAMES)[number];

/** What each limit bounds, for people reading a list of them. */
export const BUDGET_LIMIT_MEANINGS: Record<BudgetLimitName, string> = {
  max_tokens_per_run: "tokens one run may spend",
  max_usd_per_run: "US dollars one run may spend",
  max_usd_per_order: "US dollars one work order may spend over all its runs",
  max_usd_per_day: "US dollars the factory may spend per UTC day",
  max_usd_total: "US dollars the factory may spend in total",
};

/** Limits counted in tokens take whole numbers; the others are US dollars. */
export function isTokenLimit(name: BudgetLimitName): boolean {
  return name === "max_tokens_per_run";
}
