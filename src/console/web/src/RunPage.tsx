import { useEffect, useState } from "react";
import type { RunDetail } from "./api.ts";
import { post, subscribe } from "./api.ts";

type Event = RunDetail["events"][number];

export function RunPage({ id }: { id: number }) {
  const [detail, setDetail] = useState<RunDetail>();
  const [error, setError] = useState("");
  useEffect(() => subscribe<RunDetail>(`/api/runs/${id}/stream`, "run", setDetail), [id]);
  if (!detail) return <p className="muted">loading run {id}…</p>;
  const { run, order } = detail;
  return (
    <div className="run-page" data-testid="run-page">
      <section className="panel run-head">
        <h2>
          Run {run.id} · <a href="#/">WO-{order.id}</a> {order.title}
        </h2>
        <div className="facts">
          <span data-testid="run-status" className={`badge ${run.status}`}>
            {run.status}
          </span>
          <span>phase {run.phase}</span>
          <span>attempt {run.attempt}</span>
          <span>
            {run.agent} · {run.model}
          </span>
          <span>worker {run.workerId}</span>
          <span data-testid="run-tokens">
            {run.inputTokens.toLocaleString()} in / {run.outputTokens.toLocaleString()} out
          </span>
          <span data-testid="run-cost">${run.costUsd.toFixed(4)}</span>
          <span>{detail.modelRequests} model requests</span>
          {run.status === "running" && (
            <button
              type="button"
              className="warn"
              onClick={() =>
                post(`/api/runs/${run.id}/stop`).then(
                  () => setError(""),
                  (e: Error) => setError(e.message),
                )
              }
            >
              Stop run
            </button>
          )}
        </div>
        {run.outcomeReason && (
          <p data-testid="run-outcome">
            <strong>Why it ended:</strong> {run.outcomeReason}
          </p>
        )}
        {error && <p className="error">{error}</p>}
      </section>
      <div className="run-grid">
        <section className="panel">
          <h3>Agent transcript and tool calls</h3>
          <ol className="events" data-testid="events">
            {detail.events.map((e) => (
              <EventRow key={e.id} event={e} />
            ))}
          </ol>
          {detail.transcript.length > 0 && (
            <>
              <h3>Model exchanges (gateway)</h3>
              {detail.transcript.map((t, i) => (
                <details key={t.requestId} className="exchange">
                  <summary>
                    {i + 1}. {t.protocol} {t.model} · HTTP {t.status}
                    {t.error ? ` · ${t.error}` : ""}
                  </summary>
                  <pre>{t.request}</pre>
                  <pre>{t.response}</pre>
                </details>
              ))}
            </>
          )}
        </section>
        <section className="panel">
          <h3>Gates</h3>
          {detail.gates.length === 0 && <p className="muted">no gate has run yet</p>}
          {detail.gates.map((g) => (
            <details
              key={`${g.gate}-${g.stage}-${g.commit}-${g.at}`}
              className={`gate ${g.passed ? "pass" : "fail"}`}
              data-testid={`gate-${g.gate}`}
            >
              <summary>
                {g.passed ? "✔" : "✘"} {g.gate} ({g.stage}) · {g.commit.slice(0, 8)} ·{" "}
                {(g.durationMs / 1000).toFixed(1)}s{g.timedOut ? " · timed out" : ""}
              </summary>
              <pre>{g.output || "(no output)"}</pre>
            </details>
          ))}
          <h3>Diff</h3>
          <Diff text={detail.diff} />
          <h3>History</h3>
          <ul className="history">
            {detail.transitions.map((t, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: the history only grows at its end
              <li key={i}>
                <time>{new Date(t.at).toLocaleTimeString()}</time> → {t.to}{" "}
                {t.message && `· ${t.message}`}
              </li>
            ))}
          </ul>
        </section>
      </div>
    </div>
  );
}

function EventRow({ event }: { event: Event }) {
  const p = (event.payload ?? {}) as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));
  let body: string;
  switch (event.kind) {
    case "message":
      body = text(p.text);
      break;
    case "tool_call":
      body = `${text(p.tool)}(${text(p.input)})`;
      break;
    case "tool_result":
      body = `${text(p.tool)} → ${text(p.output).slice(0, 2000)}`;
      break;
    case "sandbox_violation":
      body = `blocked ${text(p.violation)}: ${text(p.detail)}`;
      break;
    case "done":
      body = `${text(p.reason)}: ${text(p.summary)}`;
      break;
    default:
      body = JSON.stringify(p);
  }
  return (
    <li className={`event ${event.kind}`} data-kind={event.kind}>
      <span className="kind">{event.kind}</span>
      <span className="body">{body}</span>
    </li>
  );
}

function Diff({ text }: { text: string }) {
  if (!text) return <p className="muted">no change yet</p>;
  return (
    <pre className="diff" data-testid="diff">
      {text.split("\n").map((line, i) => {
        const kind =
          line.startsWith("+++") || line.startsWith("---")
            ? "file"
            : line.startsWith("+")
              ? "add"
              : line.startsWith("-")
                ? "del"
                : line.startsWith("@@")
                  ? "hunk"
                  : "";
        return (
          // biome-ignore lint/suspicious/noArrayIndexKey: a diff's lines have no identity but their place
          <span key={i} className={kind}>
            {line}
            {"\n"}
          </span>
        );
      })}
    </pre>
  );
}
