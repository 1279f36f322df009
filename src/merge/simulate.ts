import {
  type CoreAction,
  type CoreOptions,
  SpeculativeQueueCore,
  type StackVerdict,
} from "./speculative-core.ts";

/**
 * A simulated repository for the queue's algorithm: candidates that are broken on their own, that
 * break only together with another one (a semantic conflict), or that do not apply on top of
 * another one (a textual conflict). Used by the property test and the benchmark; also good for
 * capacity planning, since it is the same core the line runs.
 */
export interface SimCandidate {
  id: string;
  /** Fails the tests in any stack that holds it. */
  broken: boolean;
  /** Does not apply on a stack that already holds this candidate. */
  conflictsWith?: string;
  /** Fails the tests in any stack that also holds this candidate. */
  breaksWith?: string;
}

/** The verdict the gates would give on `below` (already applied, green or not) plus `add`. */
export function simulatedVerdict(
  byId: ReadonlyMap<string, SimCandidate>,
  below: readonly string[],
  add: readonly string[],
): StackVerdict {
  const stack = new Set(below);
  for (const id of add) {
    const c = byId.get(id);
    if (c?.conflictsWith && stack.has(c.conflictsWith)) {
      return { kind: "conflict", id, reason: `does not apply on top of ${c.conflictsWith}` };
    }
    stack.add(id);
  }
  for (const id of stack) {
    const c = byId.get(id);
    if (c?.broken) return { kind: "fail", reason: `${id} breaks the tests` };
    if (c?.breaksWith && stack.has(c.breaksWith)) {
      return { kind: "fail", reason: `${id} breaks the tests together with ${c.breaksWith}` };
    }
  }
  return { kind: "pass" };
}

/** mulberry32: small, fast, seedable; the simulations must be reproducible from their seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DayOptions {
  queue: CoreOptions;
  seed: number;
  /** Hours during which candidates arrive. */
  hours: number;
  /** Mean candidates per hour (Poisson arrivals). */
  arrivalsPerHour: number;
  /** Share of candidates broken on their own. */
  failureRate: number;
  /** Share of candidates that do not apply on top of the candidate before them. */
  conflictRate: number;
  /** Mean minutes one test round takes; each round takes 80-120% of it. */
  testMinutes: number;
}

export interface DayResult {
  arrived: number;
  landed: number;
  ejected: number;
  /** Hours from the first arrival until the queue was empty. */
  elapsedHours: number;
  landedPerHour: number;
  medianMinutesToLand: number;
  tests: number;
  /** Most tests running at once. */
  peakParallel: number;
}

interface Event {
  at: number;
  seq: number;
  kind: "arrive" | "done";
  id: string;
  testId: number;
}

/**
 * A discrete-event simulation of a day of candidates through the queue: Poisson arrivals, tests
 * of random length, each test on its own runner (so `queue.depth` is also the runner count).
 */
export function simulateDay(options: DayOptions): DayResult {
  const random = seededRandom(options.seed);
  const candidates = new Map<string, SimCandidate>();
  const arrivedAt = new Map<string, number>();
  const events: Event[] = [];
  let seq = 0;
  const push = (e: Omit<Event, "seq">) => {
    events.push({ ...e, seq: seq++ });
  };
  const ratePerMinute = options.arrivalsPerHour / 60;
  let previous: string | undefined;
  for (let t = 0, n = 0; ; n++) {
    t += -Math.log(1 - random()) / ratePerMinute;
    if (t > options.hours * 60) break;
    const id = `c${n}`;
    const c: SimCandidate = { id, broken: random() < options.failureRate };
    if (previous && random() < options.conflictRate) c.conflictsWith = previous;
    candidates.set(id, c);
    previous = id;
    push({ at: t, kind: "arrive", id, testId: 0 });
  }

  const core = new SpeculativeQueueCore(options.queue);
  const landed: string[] = [];
  const stacks = new Map<number, string[]>();
  const running = new Set<number>();
  const timesToLand: number[] = [];
  let ejected = 0;
  let tests = 0;
  let peak = 0;
  let now = 0;
  const apply = (actions: CoreAction[]) => {
    for (const action of actions) {
      switch (action.kind) {
        case "test": {
          const below =
            action.base.kind === "main" ? landed : (stacks.get(action.base.testId) ?? []);
          stacks.set(action.testId, [...below, ...action.add]);
          running.add(action.testId);
          tests += 1;
          peak = Math.max(peak, running.size);
          const minutes = options.testMinutes * (0.8 + 0.4 * random());
          push({ at: now + minutes, kind: "done", id: "", testId: action.testId });
          break;
        }
        case "cancel":
          running.delete(action.testId);
          break;
        case "land":
          landed.push(...action.ids);
          for (const id of action.ids) timesToLand.push(now - (arrivedAt.get(id) ?? now));
          break;
        case "eject":
          ejected += 1;
          break;
      }
    }
  };
  let first: number | undefined;
  for (;;) {
    events.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const event = events.shift();
    if (!event) break;
    now = event.at;
    if (event.kind === "arrive") {
      first ??= now;
      arrivedAt.set(event.id, now);
      apply(core.enqueue({ id: event.id }));
      continue;
    }
    if (!running.delete(event.testId)) continue;
    const stack = stacks.get(event.testId) ?? [];
    const below = stack.slice(0, stack.length);
    apply(core.report(event.testId, simulatedVerdict(candidates, [], below)));
  }
  const elapsedHours = (now - (first ?? 0)) / 60;
  timesToLand.sort((a, b) => a - b);
  return {
    arrived: candidates.size,
    landed: landed.length,
    ejected,
    elapsedHours,
    landedPerHour: elapsedHours > 0 ? landed.length / elapsedHours : 0,
    medianMinutesToLand: timesToLand[Math.floor(timesToLand.length / 2)] ?? 0,
    tests,
    peakParallel: peak,
  };
}
