import type { Kysely } from "kysely";
import type { Database } from "./schema.ts";

/** Where the line's time went, summed over runs (runs overlap, so the sums exceed the wall time). */
export interface TimeSpent {
  /** From a run's start to its candidate's first gate (or to its end, when no candidate came). */
  agentMs: number;
  /** Per gate and stage ("test (candidate)", "test (merge)"): total time and how many runs of it. */
  gates: { name: string; ms: number; count: number }[];
  /** A landed run's wait between its candidate's gates and landing, besides its merge gates. */
  queueMs: number;
  runs: number;
}

/**
 * Reads the breakdown from rows the line writes anyway (runs, gate_results, merges): the demo
 * prints it, so that a slow demo says whether the agent, a gate or the queue is slow.
 */
export async function timeSpent(db: Kysely<Database>): Promise<TimeSpent> {
  const [runs, gates, merges] = await Promise.all([
    db.selectFrom("runs").select(["id", "started_at", "ended_at"]).execute(),
    db
      .selectFrom("gate_results")
      .select(["run_id", "gate", "stage", "duration_ms", "at"])
      .execute(),
    db.selectFrom("merges").select(["run_id", "at"]).execute(),
  ]);
  const ms = (value: Date | string) => new Date(value).getTime();
  const byGate = new Map<string, { ms: number; count: number }>();
  const perRun = new Map<number, { firstStart: number; candidateEnd: number; mergeMs: number }>();
  for (const gate of gates) {
    const name = `${gate.gate} (${gate.stage})`;
    const entry = byGate.get(name) ?? { ms: 0, count: 0 };
    entry.ms += gate.duration_ms;
    entry.count += 1;
    byGate.set(name, entry);
    const end = ms(gate.at);
    const run = perRun.get(gate.run_id) ?? {
      firstStart: Number.POSITIVE_INFINITY,
      candidateEnd: 0,
      mergeMs: 0,
    };
    if (gate.stage === "candidate") {
      run.firstStart = Math.min(run.firstStart, end - gate.duration_ms);
      run.candidateEnd = Math.max(run.candidateEnd, end);
    } else {
      run.mergeMs += gate.duration_ms;
    }
    perRun.set(gate.run_id, run);
  }
  let agentMs = 0;
  for (const run of runs) {
    const gated = perRun.get(run.id);
    const until =
      gated && Number.isFinite(gated.firstStart)
        ? gated.firstStart
        : run.ended_at
          ? ms(run.ended_at)
          : ms(run.started_at);
    agentMs += Math.max(0, until - ms(run.started_at));
  }
  let queueMs = 0;
  for (const merge of merges) {
    const gated = perRun.get(merge.run_id);
    if (!gated || gated.candidateEnd === 0) continue;
    queueMs += Math.max(0, ms(merge.at) - gated.candidateEnd - gated.mergeMs);
  }
  return {
    agentMs,
    gates: [...byGate].map(([name, entry]) => ({ name, ...entry })),
    queueMs,
    runs: runs.length,
  };
}
