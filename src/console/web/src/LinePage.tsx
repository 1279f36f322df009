import { type FormEvent, useEffect, useState } from "react";
import type { LineView } from "./api.ts";
import { post, subscribe } from "./api.ts";

type Order = LineView["orders"][number];

const COLUMNS: { station: Order["station"]; label: string }[] = [
  { station: "waiting", label: "Waiting for a person" },
  { station: "queued", label: "Queued" },
  { station: "running", label: "Running" },
  { station: "gating", label: "Gating" },
  { station: "merging", label: "Merge queue" },
  { station: "landed", label: "Landed" },
  { station: "proposed", label: "Pull request" },
  { station: "failed", label: "Failed" },
  { station: "defect", label: "Defect" },
  { station: "cancelled", label: "Cancelled" },
];

export function LinePage() {
  const [line, setLine] = useState<LineView>();
  const [live, setLive] = useState(false);
  const [error, setError] = useState("");
  useEffect(() => subscribe<LineView>("/api/stream", "line", setLine, setLive), []);
  const act = (what: Promise<unknown>) =>
    what.then(
      () => setError(""),
      (e: Error) => setError(e.message),
    );
  if (!line) return <p className="muted">connecting to the line…</p>;
  return (
    <div className="line-page">
      <section
        className={`status-bar ${line.paused.paused ? "paused" : "working"}`}
        data-testid="line-state"
      >
        <div>
          <strong>{line.factory}</strong>{" "}
          {line.paused.paused ? (
            <span data-testid="paused">
              paused by {line.paused.by}
              {line.paused.reason ? ` (${line.paused.reason})` : ""}
              {line.paused.seenAt
                ? " · workers have stopped claiming"
                : " · waiting for workers to notice"}
            </span>
          ) : (
            <span>working</span>
          )}
          {line.mainFailing && (
            <span className="alarm"> · main fails its gates: {line.mainFailing.cause}</span>
          )}
          <span className={`dot ${live ? "live" : ""}`} title={live ? "live" : "reconnecting"} />
        </div>
        <div className="throughput">
          <span data-testid="landed-hour">{line.throughput.landedLastHour} landed/h</span>
          <span>{line.throughput.runsLastHour} runs/h</span>
          <span>${line.throughput.costUsdTotal.toFixed(4)} spent</span>
          <span>{line.throughput.tokensTotal.toLocaleString()} tokens</span>
          {line.paused.paused ? (
            <button
              type="button"
              data-testid="resume"
              onClick={() => act(post("/api/line/resume"))}
            >
              Resume line
            </button>
          ) : (
            <button
              type="button"
              data-testid="pause"
              className="warn"
              onClick={() => act(post("/api/line/pause"))}
            >
              Pause line
            </button>
          )}
        </div>
      </section>
      {error && (
        <p className="error" data-testid="error">
          {error}
        </p>
      )}
      <section className="counts">
        {COLUMNS.map((c) => (
          <div key={c.station} className={`count ${c.station}`} data-testid={`count-${c.station}`}>
            <span className="n">{line.counts[c.station]}</span>
            <span className="label">{c.label}</span>
          </div>
        ))}
      </section>
      <section className="board">
        {COLUMNS.filter((c) => line.counts[c.station] > 0).map((c) => (
          <div key={c.station} className="column" data-testid={`column-${c.station}`}>
            <h3>{c.label}</h3>
            {line.orders
              .filter((o) => o.station === c.station)
              .sort((a, b) => b.priority - a.priority || a.id - b.id)
              .map((o) => (
                <OrderCard key={o.id} order={o} act={act} />
              ))}
          </div>
        ))}
      </section>
      <div className="lower">
        <AddOrder act={act} />
        <section className="panel">
          <h3>Open defects</h3>
          {line.defects.length === 0 && <p className="muted">none</p>}
          {line.defects.map((d) => (
            <div key={d.id} className="defect" data-testid={`defect-${d.id}`}>
              <strong>D-{d.id}</strong> {d.kind}: {d.summary}{" "}
              {d.runId && <a href={`#/runs/${d.runId}`}>run {d.runId}</a>}{" "}
              <button type="button" onClick={() => act(post(`/api/defects/${d.id}/close`))}>
                Close
              </button>
            </div>
          ))}
        </section>
        <section className="panel">
          <h3>Controls used</h3>
          <ul className="controls-log" data-testid="controls-log">
            {line.controls.slice(0, 12).map((c) => (
              <li key={c.id}>
                <time>{new Date(c.at).toLocaleTimeString()}</time> {c.actor} · {c.action}
                {c.orderId ? ` WO-${c.orderId}` : ""}
                {c.note ? ` — ${c.note}` : ""}
              </li>
            ))}
          </ul>
        </section>
      </div>
    </div>
  );
}

function OrderCard({ order, act }: { order: Order; act: (p: Promise<unknown>) => void }) {
  const control = (action: string) => act(post(`/api/orders/${order.id}/control`, { action }));
  const running = order.status === "running";
  return (
    <article className="order" data-testid={`order-${order.id}`} data-station={order.station}>
      <header>
        <span className="id">WO-{order.id}</span>
        {order.priority !== 0 && <span className="prio">p{order.priority}</span>}
        <span className="attempts">attempt {order.attempts}</span>
      </header>
      <div className="title">{order.title}</div>
      {order.failureReason && <div className="reason">{order.failureReason}</div>}
      <footer>
        {(order.liveRunId ?? order.lastRunId) !== null && (
          <a
            href={`#/runs/${order.liveRunId ?? order.lastRunId}`}
            data-testid={`run-link-${order.id}`}
          >
            run {order.liveRunId ?? order.lastRunId}
          </a>
        )}
        {order.status === "waiting" && (
          <>
            <button
              type="button"
              data-testid={`approve-${order.id}`}
              onClick={() => control("approve")}
            >
              Approve
            </button>
            <button
              type="button"
              data-testid={`reject-${order.id}`}
              className="warn"
              onClick={() => control("reject")}
            >
              Reject
            </button>
          </>
        )}
        {(order.status === "failed" || order.status === "cancelled") && (
          <button type="button" onClick={() => control("retry")}>
            Retry
          </button>
        )}
        {running && order.liveRunId !== null && (
          <button
            type="button"
            className="warn"
            onClick={() => act(post(`/api/runs/${order.liveRunId}/stop`))}
          >
            Stop run
          </button>
        )}
        {["waiting", "queued", "failed"].includes(order.status) && (
          <button type="button" className="warn" onClick={() => control("cancel")}>
            Cancel
          </button>
        )}
        {["waiting", "queued"].includes(order.status) && (
          <button
            type="button"
            title="raise priority"
            onClick={() =>
              act(post(`/api/orders/${order.id}/amend`, { priority: order.priority + 1 }))
            }
          >
            ▲
          </button>
        )}
        {["waiting", "queued", "running", "failed"].includes(order.status) && (
          <button
            type="button"
            title="tokens one run of this order may spend"
            onClick={() => {
              const answer = window.prompt(
                "Token budget per run (empty: the factory's)",
                order.budgetTokens ? String(order.budgetTokens) : "",
              );
              if (answer === null) return;
              const budgetTokens = answer.trim() === "" ? null : Number(answer);
              if (budgetTokens !== null && !Number.isInteger(budgetTokens)) {
                act(Promise.reject(new Error(`"${answer}" is not a whole number of tokens`)));
                return;
              }
              act(post(`/api/orders/${order.id}/amend`, { budgetTokens }));
            }}
          >
            budget{order.budgetTokens ? ` ${order.budgetTokens.toLocaleString()}` : ""}
          </button>
        )}
      </footer>
    </article>
  );
}

function AddOrder({ act }: { act: (p: Promise<unknown>) => void }) {
  const [title, setTitle] = useState("");
  const [spec, setSpec] = useState("");
  const [approval, setApproval] = useState(false);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    act(
      post("/api/orders", {
        title,
        ...(spec ? { spec } : {}),
        ...(approval ? { needsApproval: true } : {}),
      }).then(() => {
        setTitle("");
        setSpec("");
      }),
    );
  };
  return (
    <form className="panel add-order" onSubmit={submit} data-testid="add-order">
      <h3>Add a work order</h3>
      <input
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        placeholder="title"
        name="title"
      />
      <textarea
        value={spec}
        onChange={(e) => setSpec(e.target.value)}
        placeholder="spec (optional)"
        name="spec"
      />
      <label>
        <input
          type="checkbox"
          checked={approval}
          onChange={(e) => setApproval(e.target.checked)}
          name="needsApproval"
        />{" "}
        wait for a person's approval
      </label>
      <button type="submit" disabled={!title.trim()}>
        Add
      </button>
    </form>
  );
}
