/**
 * A simulated day of candidates through the serial queue (one candidate per test, one test at a
 * time: what the line did before) and through the speculative batched queue, in one run, with the
 * same arrivals, failures and test durations. Both are the real queue core (src/merge); only the
 * repository and the clock are simulated.
 *
 *   npm run bench:queue
 *   QUEUE_FAILURE_RATE=0.3 QUEUE_ARRIVALS_PER_HOUR=60 npm run bench:queue
 */
import { type CoreOptions, type DayResult, simulateDay } from "../src/merge/index.ts";

function knob(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const day = {
  hours: knob("QUEUE_HOURS", 24),
  arrivalsPerHour: knob("QUEUE_ARRIVALS_PER_HOUR", 30),
  failureRate: knob("QUEUE_FAILURE_RATE", 0.1),
  conflictRate: knob("QUEUE_CONFLICT_RATE", 0.02),
  testMinutes: knob("QUEUE_TEST_MINUTES", 10),
};
const seeds = Array.from({ length: knob("QUEUE_SEEDS", 5) }, (_, i) => i + 1);
const serial: CoreOptions = { maxBatch: 1, depth: 1, maxRounds: 1_000 };
const speculative: CoreOptions = {
  maxBatch: knob("QUEUE_MAX_BATCH", 4),
  depth: knob("QUEUE_DEPTH", 6),
  maxRounds: knob("QUEUE_MAX_ROUNDS", 12),
  screen: knob("QUEUE_SCREEN", 0) > 0,
};

function run(queue: CoreOptions): DayResult & { wallMs: number } {
  const started = performance.now();
  const results = seeds.map((seed) => simulateDay({ ...day, seed, queue }));
  const mean = (pick: (r: DayResult) => number) =>
    results.reduce((sum, r) => sum + pick(r), 0) / results.length;
  return {
    arrived: mean((r) => r.arrived),
    landed: mean((r) => r.landed),
    ejected: mean((r) => r.ejected),
    elapsedHours: mean((r) => r.elapsedHours),
    landedPerHour: mean((r) => r.landedPerHour),
    medianMinutesToLand: mean((r) => r.medianMinutesToLand),
    tests: mean((r) => r.tests),
    peakParallel: Math.max(...results.map((r) => r.peakParallel)),
    wallMs: performance.now() - started,
  };
}

const a = run(serial);
const b = run(speculative);
const row = (name: string, r: ReturnType<typeof run>) =>
  `| ${name} | ${r.landedPerHour.toFixed(1)} | ${r.medianMinutesToLand.toFixed(0)} min | ${r.landed.toFixed(0)} / ${r.ejected.toFixed(0)} | ${r.tests.toFixed(0)} | ${r.peakParallel} | ${r.elapsedHours.toFixed(1)} h |`;

console.log(
  `queue benchmark: ${day.hours} h of arrivals at ${day.arrivalsPerHour}/h, failure rate ${day.failureRate}, conflict rate ${day.conflictRate}, tests ${day.testMinutes} min (±20%), mean of ${seeds.length} seeds`,
);
console.log(
  `speculative queue: batches of up to ${speculative.maxBatch}, ${speculative.depth} test runners, round cap ${speculative.maxRounds}`,
);
console.log("");
console.log(
  "| queue | landed/hour | median time to land | landed / ejected | tests | runners | until empty |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
console.log(row("serial (baseline)", a));
console.log(row("speculative batched", b));
console.log("");
console.log(
  `ratio speculative/serial: ${(b.landedPerHour / a.landedPerHour).toFixed(2)}x landed per hour, ` +
    `${(a.medianMinutesToLand / Math.max(b.medianMinutesToLand, 1e-9)).toFixed(1)}x shorter median time to land`,
);
console.log(`(simulated in ${(a.wallMs + b.wallMs).toFixed(0)} ms)`);
