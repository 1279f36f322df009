import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { NightshiftError } from "../errors/index.ts";
import { Transcripts } from "../gateway/index.ts";
import type { Ledger, Run } from "../ledger/index.ts";
import type { RunDetail, RunEventView } from "./schema.ts";
import { iso, orderView, runSummary } from "./views.ts";

const exec = promisify(execFile);
/** A diff larger than this is cut: the page is for reading, the branch has the rest. */
const MAX_DIFF_CHARS = 400_000;
const MAX_TRANSCRIPT_FIELD = 20_000;

/** Everything about one run a supervisor looks at: events, gates, transcript, diff, spend. */
export async function runDetail(
  ledger: Ledger,
  where: { repo: string; stateDir: string },
  runId: number,
): Promise<RunDetail> {
  const run = await ledger.getRun(runId);
  if (!run) {
    throw new NightshiftError("run_not_found", `there is no run ${runId}`, {
      hint: "pick a run from the line view",
    });
  }
  const [order, runs, defects, events, gates, transitions, requests, transcript, diff] =
    await Promise.all([
      ledger.getOrder(run.order_id),
      ledger.listRuns(run.order_id),
      ledger.listDefects(),
      runEvents(ledger, runId, "0"),
      ledger.listGateResults(runId),
      ledger.listTransitions(run.order_id),
      ledger.metering.listModelRequests(runId),
      new Transcripts(path.join(where.stateDir, "transcripts")).read(runId).catch(() => []),
      runDiff(where.repo, run),
    ]);
  if (!order) throw new Error(`run ${runId} names order ${run.order_id}, which is missing`);
  return {
    run: runSummary(run),
    order: orderView(order, runs, defects),
    events,
    gates: gates.map((g) => ({
      gate: g.gate,
      stage: g.stage,
      commit: g.commit_sha,
      passed: g.passed,
      exitCode: g.exit_code,
      timedOut: g.timed_out,
      output: g.output,
      durationMs: g.duration_ms,
      at: iso(g.at),
    })),
    transcript: transcript.map((t) => ({
      requestId: t.requestId,
      at: t.at,
      protocol: t.protocol,
      model: t.model,
      status: t.status,
      request: cut(t.request),
      response: cut(t.response),
      ...(t.error ? { error: t.error } : {}),
    })),
    modelRequests: requests.length,
    diff,
    transitions: transitions
      .filter((t) => t.run_id === null || t.run_id === runId)
      .map((t) => ({ to: t.to_status, message: t.message, at: iso(t.at) })),
  };
}

/** The run's events after event id `after` (ids only grow), for the page's live stream. */
export async function runEvents(
  ledger: Ledger,
  runId: number,
  after: string,
): Promise<RunEventView[]> {
  const rows = await ledger.db
    .selectFrom("run_events")
    .selectAll()
    .where("run_id", "=", runId)
    .where("id", ">", after)
    .orderBy("id")
    .limit(2000)
    .execute();
  return rows.map((e) => ({
    id: String(e.id),
    seq: e.seq,
    kind: e.kind,
    payload: e.payload,
    at: iso(e.at),
  }));
}

/**
 * The change the run made: its candidate commit against its base once it has one, else what its
 * workspace holds so far (while the agent works), else nothing.
 */
async function runDiff(repo: string, run: Run): Promise<string> {
  try {
    if (run.base_commit && run.candidate_commit) {
      return limit(await git(repo, ["diff", run.base_commit, run.candidate_commit]));
    }
    if (run.workspace_path && existsSync(run.workspace_path)) {
      return limit(await git(run.workspace_path, ["diff", "HEAD"]));
    }
  } catch {
    // A pruned worktree or a commit gone from this host: nothing to show.
  }
  return "";
}

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await exec("git", ["-c", "core.quotePath=false", ...args], {
    cwd,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

function limit(text: string): string {
  return text.length > MAX_DIFF_CHARS
    ? `${text.slice(0, MAX_DIFF_CHARS)}\n… (diff cut at ${MAX_DIFF_CHARS} characters)\n`
    : text;
}

function cut(text: string): string {
  return text.length > MAX_TRANSCRIPT_FIELD
    ? `${text.slice(0, MAX_TRANSCRIPT_FIELD)} … (${text.length - MAX_TRANSCRIPT_FIELD} more characters)`
    : text;
}
