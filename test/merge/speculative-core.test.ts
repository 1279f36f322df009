import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type CoreAction,
  type SimCandidate,
  SpeculativeQueueCore,
  seededRandom,
  simulatedVerdict,
} from "../../src/merge/index.ts";

interface Scenario {
  candidates: SimCandidate[];
  maxBatch: number;
  depth: number;
  maxRounds: number;
  seed: number;
  /** Chance that a landing loses the race to somebody else moving main. */
  raceRate: number;
  screen: boolean;
}

const scenarios: fc.Arbitrary<Scenario> = fc
  .record({
    n: fc.integer({ min: 1, max: 40 }),
    failureRate: fc.double({ min: 0, max: 0.6, noNaN: true }),
    conflictRate: fc.double({ min: 0, max: 0.3, noNaN: true }),
    interactionRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
    maxBatch: fc.integer({ min: 1, max: 8 }),
    depth: fc.integer({ min: 1, max: 6 }),
    maxRounds: fc.integer({ min: 1, max: 12 }),
    seed: fc.integer(),
    raceRate: fc.constantFrom(0, 0, 0.1),
    screen: fc.boolean(),
  })
  .map((s) => {
    const random = seededRandom(s.seed ^ 0x5eed);
    const candidates: SimCandidate[] = [];
    for (let i = 0; i < s.n; i++) {
      const other = () => `c${Math.floor(random() * s.n)}`;
      const c: SimCandidate = { id: `c${i}`, broken: random() < s.failureRate };
      if (random() < s.conflictRate) c.conflictsWith = other();
      if (random() < s.interactionRate) c.breaksWith = other();
      candidates.push(c);
    }
    return { ...s, candidates };
  });

/**
 * Drives the core like the real adapter does, with arrivals, verdicts, cancellations (sometimes
 * ignored, so a stale verdict arrives later) and lost landing races in a random interleaving, and
 * checks the invariants at every step.
 */
function drive(s: Scenario) {
  const random = seededRandom(s.seed);
  const byId = new Map(s.candidates.map((c) => [c.id, c]));
  const core = new SpeculativeQueueCore({
    maxBatch: s.maxBatch,
    depth: s.depth,
    maxRounds: s.maxRounds,
    screen: s.screen,
  });
  const arrivals = s.candidates.map((c) => c.id);
  /** main: landed candidates plus green commits somebody else pushed. */
  const main: string[] = [];
  const stacks = new Map<
    number,
    { stack: string[]; verdict: ReturnType<typeof simulatedVerdict> }
  >();
  const running: number[] = [];
  const ended = new Map<string, string>();
  let external = 0;

  const apply = (actions: CoreAction[]): void => {
    // After a landing lost its race, the landings that followed it in the same step built on it.
    let unlanded: string[] | undefined;
    for (const action of actions) {
      if (unlanded && action.kind === "land") {
        unlanded.push(...action.ids);
        continue;
      }
      switch (action.kind) {
        case "test": {
          const below =
            action.base.kind === "main" ? [...main] : stacks.get(action.base.testId)?.stack;
          expect(below, `test ${action.testId} builds on an unknown stack`).toBeDefined();
          const base = below as string[];
          const verdict = simulatedVerdict(byId, base, action.add);
          stacks.set(action.testId, { stack: [...base, ...action.add], verdict });
          running.push(action.testId);
          break;
        }
        case "cancel": {
          // Half the time the cancellation comes too late and the verdict still arrives.
          if (random() < 0.5) running.splice(running.indexOf(action.testId), 1);
          break;
        }
        case "land": {
          const tested = stacks.get(action.testId);
          // Main only moves to a stack that was tested green exactly on top of the current main.
          expect(tested?.verdict.kind).toBe("pass");
          expect(tested?.stack).toEqual([...main, ...action.ids]);
          if (random() < s.raceRate) {
            main.push(`external${external++}`);
            unlanded = [...action.ids];
            break;
          }
          for (const id of action.ids) {
            expect(ended.has(id), `${id} ended twice`).toBe(false);
            ended.set(id, "landed");
          }
          main.push(...action.ids);
          expect(simulatedVerdict(byId, [], main).kind).toBe("pass");
          break;
        }
        case "eject":
          expect(ended.has(action.id), `${action.id} ended twice`).toBe(false);
          expect(action.reason.length).toBeGreaterThan(0);
          ended.set(action.id, `ejected (${action.cause}): ${action.reason}`);
          break;
      }
    }
    if (unlanded) apply(core.reset(unlanded));
  };

  for (let steps = 0; arrivals.length > 0 || running.length > 0; steps++) {
    expect(steps).toBeLessThan(100_000);
    // Now and then a run is cancelled while its candidate waits: it leaves without a verdict.
    const waiting = core.waiting();
    if (waiting.length > 0 && random() < 0.02) {
      const id = waiting[Math.floor(random() * waiting.length)] as string;
      ended.set(id, "withdrawn");
      apply(core.withdraw(id));
      continue;
    }
    const arrive = arrivals.length > 0 && (running.length === 0 || random() < 0.4);
    if (arrive) {
      apply(core.enqueue({ id: arrivals.shift() as string }));
      continue;
    }
    const testId = running.splice(Math.floor(random() * running.length), 1)[0] as number;
    apply(core.report(testId, stacks.get(testId)?.verdict ?? { kind: "skipped" }));
  }
  return { core, ended, main };
}

describe("the speculative queue's core", () => {
  it("keeps main green and ends every candidate exactly once, landed, ejected with a reason or withdrawn", () => {
    let simulated = 0;
    fc.assert(
      fc.property(scenarios, (s) => {
        const { core, ended } = drive(s);
        simulated += s.candidates.length;
        expect(core.waiting()).toEqual([]);
        expect(core.inFlight()).toEqual([]);
        expect([...ended.keys()].sort()).toEqual(s.candidates.map((c) => c.id).sort());
      }),
      { numRuns: 400 },
    );
    // "Thousands of simulated candidates": make sure the run above really covered that many.
    expect(simulated).toBeGreaterThan(4_000);
  });

  it("lands a green batch with one landing and finds the culprit of a red one", () => {
    const byId = new Map<string, SimCandidate>(
      ["a", "b", "c", "d"].map((id) => [id, { id, broken: id === "c" }]),
    );
    const core = new SpeculativeQueueCore({ maxBatch: 4, depth: 1, maxRounds: 10 });
    const landed: string[][] = [];
    const ejected: string[] = [];
    const stacks = new Map<number, string[]>();
    const queue: CoreAction[] = [];
    for (const id of byId.keys()) queue.push(...core.enqueue({ id }));
    let tests = 0;
    while (queue.length > 0) {
      const action = queue.shift() as CoreAction;
      if (action.kind === "test") {
        tests += 1;
        const below = action.base.kind === "main" ? landed.flat() : stacks.get(action.base.testId)!;
        stacks.set(action.testId, [...below, ...action.add]);
        queue.push(...core.report(action.testId, simulatedVerdict(byId, below, action.add)));
      } else if (action.kind === "land") landed.push(action.ids);
      else if (action.kind === "eject") ejected.push(action.id);
    }
    // a alone first (the runner was busy), then b,c,d red; each tested alone: c is the culprit;
    // b and d land together.
    expect(ejected).toEqual(["c"]);
    expect(landed).toEqual([["a"], ["b", "d"]]);
    expect(tests).toBe(6);
  });

  it("ejects a candidate that keeps being retested once it reaches the round cap", () => {
    const core = new SpeculativeQueueCore({ maxBatch: 1, depth: 1, maxRounds: 1 });
    const [test] = core.enqueue({ id: "x", rounds: 1 });
    expect(test).toMatchObject({ kind: "eject", id: "x", cause: "rounds" });
  });

  it("refuses options that would stall the queue", () => {
    expect(() => new SpeculativeQueueCore({ maxBatch: 0, depth: 1, maxRounds: 1 })).toThrow(
      /maxBatch must be a positive integer/,
    );
  });
});
