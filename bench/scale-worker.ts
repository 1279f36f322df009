/**
 * One worker process of `npm run bench:scale`: the ledger side of the line at full tilt, with a
 * trivial in-process agent (a timer) instead of a real one, so that one machine holds 1,000 runs
 * at once. Each run is what a real one costs the ledger: a claim (skip locked), the phase changes,
 * a lease renewed every lease/3, and the finishing transaction. Prints one JSON line of figures.
 *
 *   tsx bench/scale-worker.ts <schema> <workerId> <concurrency> <agentMs>
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { openLedger } from "../src/ledger/index.ts";

const [schema = "", workerId = "", concurrencyArg, agentMsArg] = process.argv.slice(2);
const url = process.env.SCALE_DATABASE_URL;
if (!schema || !workerId || !url) throw new Error("usage: scale-worker <schema> <worker> <n> <ms>");
const concurrency = Number(concurrencyArg);
const agentMs = Number(agentMsArg);
const LEASE_MS = 30_000;
// As the line claims by default ([scheduler] scopes = "separate"): scope-aware.
// SCALE_SCOPES=ignore measures the claim that ignores scopes. The bench's orders have none, so the
// difference is the cost of the scoped claim itself.
const scopes = process.env.SCALE_SCOPES === "ignore" ? null : { unscoped: "parallel" as const };

const ledger = await openLedger({ kind: "postgres", url, schema }, "bench");
const claimMs: number[] = [];
let finished = 0;
let active = 0;
let drained = false;
let wake: () => void = () => undefined;

async function simulatedRun(runId: number): Promise<void> {
  const heartbeat = setInterval(
    () => void ledger.heartbeat(runId, workerId, LEASE_MS),
    LEASE_MS / 3,
  );
  try {
    await ledger.setRunPhase(runId, "agent");
    // The agent: 0.5x to 1.5x the mean, so runs do not end in lock-step.
    await new Promise((r) => setTimeout(r, agentMs * (0.5 + Math.random())));
    await ledger.setRunPhase(runId, "gates");
    await ledger.finishRun(runId, {
      outcome: "landed",
      reason: "simulated",
      previousMain: "0".repeat(40),
      landedCommit: runId.toString(16).padStart(40, "0"),
    });
    finished += 1;
  } finally {
    clearInterval(heartbeat);
  }
}

// Timed from here: process start-up and opening the ledger are not part of the figures.
const started = performance.now();
// How late this process's own callbacks ran: a claim can take no less on a starved CPU.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
while (!drained || active > 0) {
  while (!drained && active < concurrency) {
    const t0 = performance.now();
    const claim = await ledger.claimNext({
      workerId,
      leaseMs: LEASE_MS,
      agent: "sim",
      model: "sim",
      ...(scopes ? { scopes } : {}),
    });
    claimMs.push(performance.now() - t0);
    if (!claim) {
      drained = true;
      break;
    }
    active += 1;
    void simulatedRun(claim.run.id).finally(() => {
      active -= 1;
      wake();
    });
  }
  if (active > 0)
    await new Promise<void>((r) => {
      wake = r;
    });
}
const wallMs = performance.now() - started;
loopDelay.disable();
await ledger.close();
const loopDelayP99Ms = loopDelay.percentile(99) / 1e6;
process.stdout.write(
  `${JSON.stringify({ workerId, finished, wallMs, claimMs, loopDelayP99Ms })}\n`,
);
