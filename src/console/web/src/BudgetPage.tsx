import { useCallback, useEffect, useState } from "react";
import type { BudgetLimitView, BudgetView, LineView } from "./api.ts";
import { getJson, post, subscribe } from "./api.ts";

/**
 * The factory's spending limits: each as the gateways apply it, where it is set, the spend
 * against it, and a form to change it live (recorded in the ledger with who did it).
 */
export function BudgetPage() {
  const [budget, setBudget] = useState<BudgetView>();
  const [error, setError] = useState("");
  const reload = useCallback(
    () => getJson<BudgetView>("/api/budget").then(setBudget, (e: Error) => setError(e.message)),
    [],
  );
  // Spend moves with the line: read again whenever the line changes.
  useEffect(() => subscribe<LineView>("/api/stream", "line", () => void reload()), [reload]);
  const act = async (body: { name: string; value: number | null; note: string }) => {
    try {
      setBudget(await post<BudgetView>("/api/budget/limits", body));
      setError("");
      return true;
    } catch (e) {
      setError((e as Error).message);
      return false;
    }
  };
  if (!budget) return error ? <p className="error">{error}</p> : <p className="muted">loading…</p>;
  return (
    <section className="panel budget-page" data-testid="budget-limits">
      <h3>Spending limits</h3>
      <p className="muted">
        The gateways apply a change to their next model request, no restart needed. An override wins
        over nightshift.toml's [budget] key until it is cleared.
      </p>
      {error && (
        <p className="error" data-testid="budget-error">
          {error}
        </p>
      )}
      <table className="limits">
        <thead>
          <tr>
            <th>limit</th>
            <th>in force</th>
            <th>set in</th>
            <th>spent</th>
            <th>change</th>
          </tr>
        </thead>
        <tbody>
          {budget.limits.map((limit) => (
            <LimitRow key={limit.name} limit={limit} act={act} onError={setError} />
          ))}
        </tbody>
      </table>
    </section>
  );
}

function LimitRow({
  limit,
  act,
  onError,
}: {
  limit: BudgetLimitView;
  act: (body: { name: string; value: number | null; note: string }) => Promise<boolean>;
  onError: (message: string) => void;
}) {
  const [value, setValue] = useState("");
  const [note, setNote] = useState("");
  const show = (n: number | null) =>
    n === null ? "unlimited" : limit.unit === "usd" ? `$${n.toFixed(2)}` : `${n} tokens`;
  const share = limit.value && limit.spent !== null ? Math.min(limit.spent / limit.value, 1) : 0;
  return (
    <tr data-testid={`limit-${limit.name}`} data-source={limit.source}>
      <td>
        <code>{limit.name}</code>
        <div className="muted">{limit.meaning}</div>
      </td>
      <td data-testid={`limit-value-${limit.name}`}>{show(limit.value)}</td>
      <td data-testid={`limit-source-${limit.name}`}>
        {limit.source === "override" && limit.override ? (
          <>
            override by {limit.override.setBy}
            <div className="muted">
              {new Date(limit.override.setAt).toLocaleString()} · nightshift.toml:{" "}
              {show(limit.configured)}
            </div>
          </>
        ) : limit.source === "nightshift.toml" ? (
          "nightshift.toml"
        ) : (
          <span className="muted">not set</span>
        )}
      </td>
      <td>
        {limit.spent === null ? (
          <span className="muted">nothing running</span>
        ) : (
          <>
            {show(limit.spent)} <span className="muted">{limit.spentBy}</span>
            {limit.value !== null && (
              <div className="gauge-track">
                <div
                  className={`gauge-fill ${share > 0.9 ? "hot" : ""}`}
                  style={{ width: `${share * 100}%` }}
                />
              </div>
            )}
          </>
        )}
      </td>
      <td>
        <form
          className="limit-form"
          onSubmit={async (e) => {
            e.preventDefault();
            const typed = value.trim().replace(/^\$/, "").replace(/_/g, "");
            const parsed = typed === "" ? Number.NaN : Number(typed);
            if (!Number.isFinite(parsed)) {
              onError(
                `${limit.name}: ${JSON.stringify(value)} is not a number; give ${limit.unit === "usd" ? "an amount of US dollars, e.g. 5" : "a whole number of tokens, e.g. 200000"} (Clear override goes back to nightshift.toml's value)`,
              );
              return;
            }
            // The rest (negative, fractional tokens, too large) the server checks, as for the CLI.
            if (await act({ name: limit.name, value: parsed, note })) {
              setValue("");
              setNote("");
            }
          }}
        >
          <input
            data-testid={`limit-input-${limit.name}`}
            inputMode="decimal"
            placeholder={limit.unit === "usd" ? "US dollars" : "tokens"}
            value={value}
            onChange={(e) => setValue(e.target.value)}
          />
          <input
            data-testid={`limit-note-${limit.name}`}
            placeholder="why (optional)"
            value={note}
            onChange={(e) => setNote(e.target.value)}
          />
          <button type="submit" data-testid={`limit-set-${limit.name}`}>
            Set
          </button>
          {limit.source === "override" && (
            <button
              type="button"
              data-testid={`limit-clear-${limit.name}`}
              onClick={() => void act({ name: limit.name, value: null, note })}
            >
              Clear override
            </button>
          )}
        </form>
      </td>
    </tr>
  );
}
