import { BUDGET_LIMIT_MEANINGS, type BudgetSettings, type Ledger } from "../ledger/index.ts";
import type { BudgetView } from "./schema.ts";

/** The factory's limits as the gateways apply them (overrides over nightshift.toml), with spend. */
export async function budgetView(ledger: Ledger, configured: BudgetSettings): Promise<BudgetView> {
  const standing = await ledger.budgetLimits.standing(configured);
  return {
    limits: standing.map((l) => ({
      name: l.name,
      meaning: BUDGET_LIMIT_MEANINGS[l.name],
      unit: l.unit,
      value: l.value,
      source: l.source,
      configured: l.configured,
      override: l.override
        ? {
            value: l.override.value,
            setBy: l.override.setBy,
            setAt: l.override.setAt.toISOString(),
          }
        : null,
      spent: l.spent,
      spentBy: l.spentBy,
    })),
  };
}
