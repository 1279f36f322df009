import {
  type BudgetLimitStanding,
  budgetLimitName,
  parseBudgetLimitValue,
} from "../../ledger/index.ts";
import { budgetSettingsOf, openFactory } from "../factory.ts";
import { cliActor } from "./controls.ts";

/**
 * `nightshift budget`: the factory's spending limits as the gateways apply them, where each is set
 * (a live override or nightshift.toml) and what is spent against it; the console's budget panel.
 */
export async function budgetShowCommand(
  root: string,
  options: { json?: boolean },
): Promise<string> {
  const factory = await openFactory(root, "nightshift budget");
  try {
    const standing = await factory.ledger.budgetLimits.standing(
      budgetSettingsOf(factory.config.budget),
    );
    if (options.json) return JSON.stringify({ limits: standing }, null, 2);
    return formatStanding(standing).join("\n");
  } finally {
    await factory.close();
  }
}

/** `nightshift budget set KEY VALUE`: overrides nightshift.toml's limit, live, for every gateway. */
export async function budgetSetCommand(
  root: string,
  key: string,
  raw: string,
  options: { note?: string },
): Promise<string> {
  // Checked before the ledger is opened: a typo costs nothing and says what to give.
  const name = budgetLimitName(key);
  const value = parseBudgetLimitValue(name, raw);
  const factory = await openFactory(root, "nightshift budget set");
  try {
    await factory.ledger.budgetLimits.set(name, value, cliActor(), options.note ?? "");
    const configured = budgetSettingsOf(factory.config.budget)[name];
    return `${name} = ${show(name, value)} (override; nightshift.toml: ${configured === undefined ? "unset" : show(name, configured)}); the gateways apply it to their next request, no restart needed`;
  } finally {
    await factory.close();
  }
}

/** `nightshift budget clear KEY`: nightshift.toml's value applies again. */
export async function budgetClearCommand(
  root: string,
  key: string,
  options: { note?: string },
): Promise<string> {
  const name = budgetLimitName(key);
  const factory = await openFactory(root, "nightshift budget clear");
  try {
    await factory.ledger.budgetLimits.clear(name, cliActor(), options.note ?? "");
    const configured = budgetSettingsOf(factory.config.budget)[name];
    return `${name}: override cleared; nightshift.toml's ${configured === undefined ? "(none: unlimited)" : show(name, configured)} applies again`;
  } finally {
    await factory.close();
  }
}

function show(name: string, value: number): string {
  return name === "max_tokens_per_run" ? `${value} tokens` : `$${value.toFixed(2)}`;
}

export function formatStanding(standing: BudgetLimitStanding[]): string[] {
  const rows = standing.map((l) => {
    const value = l.value === null ? "unlimited" : show(l.name, l.value);
    const where =
      l.source === "override" && l.override
        ? `override by ${l.override.setBy} at ${l.override.setAt.toISOString().slice(0, 16)}Z (nightshift.toml: ${l.configured === null ? "unset" : show(l.name, l.configured)})`
        : l.source === "nightshift.toml"
          ? "nightshift.toml"
          : "not set";
    const spent =
      l.spent === null
        ? "nothing running"
        : `${show(l.name, l.spent)} ${l.spentBy}${l.value ? ` (${Math.round((100 * l.spent) / l.value)}%)` : ""}`;
    return [l.name, value, spent, where];
  });
  const widths = [0, 1, 2].map((i) =>
    Math.max(
      ...[["limit", "value", "spent"][i] as string, ...rows.map((r) => r[i] as string)].map(
        (s) => s.length,
      ),
    ),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c))
      .join("  ")
      .trimEnd();
  return [
    line(["limit", "value", "spent", "set in"]),
    ...rows.map(line),
    "",
    "change one live: nightshift budget set KEY VALUE; back to nightshift.toml: nightshift budget clear KEY",
  ];
}
