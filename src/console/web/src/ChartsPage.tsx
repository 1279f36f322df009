import { useEffect, useState } from "react";
import type { Charts, LineView } from "./api.ts";
import { getJson, subscribe } from "./api.ts";

type Series = Charts["landedPerHour"];

export function ChartsPage() {
  const [charts, setCharts] = useState<Charts>();
  const [error, setError] = useState("");
  // Charts follow the line: read again whenever the line changes.
  useEffect(
    () =>
      subscribe<LineView>("/api/stream", "line", () =>
        getJson<Charts>("/api/charts?hours=24").then(setCharts, (e: Error) => setError(e.message)),
      ),
    [],
  );
  if (error) return <p className="error">{error}</p>;
  if (!charts) return <p className="muted">loading charts…</p>;
  const { budget } = charts;
  return (
    <div className="charts" data-testid="charts">
      <Chart
        title="Landed changes per hour"
        series={charts.landedPerHour}
        unit=""
        color="#3fb950"
      />
      <Chart
        title="Yield (landed / runs)"
        series={charts.yieldPerHour}
        unit="%"
        scale={100}
        color="#58a6ff"
      />
      <Chart
        title="Cost per landed change"
        series={charts.costPerLanded}
        unit="$"
        color="#d29922"
      />
      <Chart title="Spend per hour" series={charts.spendPerHour} unit="$" color="#db6d28" />
      <Chart title="Queue wait (mean)" series={charts.queueWaitSeconds} unit="s" color="#a371f7" />
      <Chart
        title="Time to land (mean)"
        series={charts.timeToLandSeconds}
        unit="s"
        color="#39c5cf"
      />
      <Chart title="Defects per hour" series={charts.defectsPerHour} unit="" color="#f85149" />
      <section className="panel chart" data-testid="budget">
        <h3>Spend against budget</h3>
        <Gauge label="today" spent={budget.spentUsdToday} limit={budget.dailyUsd} />
        <Gauge label="total" spent={budget.spentUsdTotal} limit={budget.totalUsd} />
      </section>
    </div>
  );
}

function Chart(props: {
  title: string;
  series: Series;
  unit: string;
  color: string;
  scale?: number;
}) {
  const scale = props.scale ?? 1;
  const values = props.series.map((p) => p.v * scale);
  const max = Math.max(...values, 1e-9);
  const width = 480;
  const height = 140;
  const bar = width / Math.max(values.length, 1);
  const last = values.at(-1) ?? 0;
  const format = (v: number) =>
    props.unit === "$" ? `$${v.toFixed(4)}` : `${Math.round(v * 10) / 10}${props.unit}`;
  return (
    <section className="panel chart">
      <h3>
        {props.title} <span className="muted">now {format(last)}</span>
      </h3>
      <svg viewBox={`0 0 ${width} ${height + 16}`} role="img" aria-label={props.title}>
        {values.map((v, i) => {
          const h = max > 0 ? (v / max) * height : 0;
          const t = props.series[i]?.t ?? String(i);
          return (
            <rect
              key={t}
              x={i * bar + 1}
              y={height - h}
              width={bar - 2}
              height={h}
              fill={props.color}
            >
              <title>
                {new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}:{" "}
                {format(v)}
              </title>
            </rect>
          );
        })}
        <line x1={0} x2={width} y1={height} y2={height} stroke="#30363d" />
        <text x={0} y={height + 13} className="axis">
          {values.length}h ago
        </text>
        <text x={width} y={height + 13} textAnchor="end" className="axis">
          now · max {format(max)}
        </text>
      </svg>
    </section>
  );
}

function Gauge({ label, spent, limit }: { label: string; spent: number; limit: number | null }) {
  const share = limit ? Math.min(spent / limit, 1) : 0;
  return (
    <div className="gauge">
      <div className="gauge-label">
        {label}: ${spent.toFixed(4)} {limit ? `of $${limit.toFixed(2)}` : "(no limit set)"}
      </div>
      <div className="gauge-track">
        <div
          className={`gauge-fill ${share > 0.9 ? "hot" : ""}`}
          style={{ width: `${share * 100}%` }}
        />
      </div>
    </div>
  );
}
