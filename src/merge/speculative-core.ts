import { NightshiftError } from "../errors/index.ts";

/**
 * The merge queue's algorithm, free of git, gates, clocks and I/O: a deterministic state machine
 * over candidate ids. The caller feeds it arrivals (`enqueue`) and test verdicts (`report`) and
 * carries out the actions it returns (start or cancel a test, land a batch, eject a candidate).
 * The same code drives real git in the line (see speculative-queue.ts), the property test and the
 * benchmark, so what the proofs cover is what runs.
 *
 * The train: batches of candidates in queue order. Batch 0 (the head) is tested on top of main;
 * each later batch on top of the stack the batch before it built, i.e. assuming every batch ahead
 * passes (speculation). Every verdict is therefore conditional on the batches ahead passing, and
 * only the head's verdict is final. A green head lands with one fast-forward to exactly the commit
 * that was tested. A red batch leaves the train at once (with everything built on it): its members
 * are each tested alone on main in a lane of their own, the red ones are ejected and the others
 * rejoin the front of the queue, while the train goes on without them. A red single candidate is
 * the culprit: it is ejected when it reaches the head, and until then the train builds past it.
 */

export interface CoreOptions {
  /** Most candidates tested together in one batch. 1 disables batching. */
  maxBatch: number;
  /** Most batches in the train at once, i.e. tests in flight. 1 disables speculation. */
  depth: number;
  /** Most tests a candidate may take part in before it is ejected (the gate-round cap). */
  maxRounds: number;
  /**
   * Test each candidate alone on main before it joins the train, on a runner the train leaves
   * free. A candidate red on its own is ejected without costing the train a round; the train then
   * mostly carries candidates that pass, so its batches land whole. Off when candidates arrive
   * already screened (the line runs the candidate gates in each run's own workspace).
   */
  screen?: boolean;
}

export interface CoreCandidate {
  id: string;
  /** Tests it already took part in (carried over a restart). */
  rounds?: number;
}

export type StackVerdict =
  | { kind: "pass" }
  | { kind: "fail"; reason: string }
  /** Candidate `id` of the tested batch did not apply on top of the stack below it. */
  | { kind: "conflict"; id: string; reason: string }
  /** The test could not be built because the stack below it could not (nothing was judged). */
  | { kind: "skipped" };

/** Where a test's stack starts: the current main tip, or the stack another test built. */
export type TestBase = { kind: "main" } | { kind: "test"; testId: number };

export type EjectCause = "failed" | "conflict" | "rounds";

export type CoreAction =
  /** Build `add` on top of `base` and run the gates on the result. */
  | { kind: "test"; testId: number; base: TestBase; add: string[] }
  /** A test whose verdict can no longer matter; stop it if it is still running. */
  | { kind: "cancel"; testId: number }
  /** Move main to the stack test `testId` built (one fast-forward); `ids` land, in this order. */
  | { kind: "land"; testId: number; ids: string[] }
  | { kind: "eject"; id: string; cause: EjectCause; reason: string };

interface Batch {
  ids: string[];
  /** Set once a test was started for exactly this stack. */
  testId?: number;
  verdict?: StackVerdict;
}

export class QueueCoreError extends NightshiftError {
  constructor(message: string) {
    super("invalid_queue_options", message, { hint: "fix the [merge] section of nightshift.toml" });
    this.name = "QueueCoreError";
  }
}

export class SpeculativeQueueCore {
  private pending: string[] = [];
  /** Candidates waiting to be screened, and the screening tests in flight (test id -> candidate). */
  private unscreened: string[] = [];
  /** Members of a red batch, each to be tested alone on main before they may rejoin the train. */
  private suspects: string[] = [];
  private readonly screens = new Map<number, { id: string; suspect: boolean }>();
  private train: Batch[] = [];
  private readonly rounds = new Map<string, number>();
  private readonly known = new Set<string>();
  /** Arrival order, so candidates coming back from the suspects' lane keep their place. */
  private readonly arrival = new Map<string, number>();
  private arrivals = 0;
  private nextTestId = 1;
  private actions: CoreAction[] = [];

  constructor(private readonly options: CoreOptions) {
    for (const key of ["maxBatch", "depth", "maxRounds"] as const) {
      const value = options[key];
      if (!Number.isInteger(value) || value < 1) {
        throw new QueueCoreError(`${key} must be a positive integer, got ${value}`);
      }
    }
  }

  /** Adds a candidate at the back of the queue. Adding one the queue already holds is a no-op. */
  enqueue(candidate: CoreCandidate): CoreAction[] {
    if (!this.known.has(candidate.id)) {
      this.known.add(candidate.id);
      this.arrival.set(candidate.id, this.arrivals++);
      this.rounds.set(candidate.id, candidate.rounds ?? 0);
      (this.options.screen ? this.unscreened : this.pending).push(candidate.id);
    }
    return this.settle();
  }

  /** Records a test's verdict. Verdicts of cancelled or unknown tests are ignored. */
  report(testId: number, verdict: StackVerdict): CoreAction[] {
    const screened = this.screens.get(testId);
    if (screened !== undefined) {
      this.screens.delete(testId);
      this.admit(screened.id, verdict, screened.suspect);
      return this.settle();
    }
    const index = this.train.findIndex((b) => b.testId === testId);
    const batch = this.train[index];
    if (batch && !batch.verdict) {
      batch.verdict = verdict;
      // Stacks built on a red one are doomed whatever happens ahead of it: free their runners now.
      if (verdict.kind !== "pass") this.requeueFrom(index + 1);
      // Act on a red batch at once rather than when it reaches the head: taking it out of the
      // train costs nothing if a batch ahead fails too, and frees the train if none does.
      if (index > 0) this.train.splice(index, 1, ...this.isolate(batch, verdict));
    }
    return this.settle();
  }

  /**
   * Forgets every speculation: main moved under the queue (someone else landed) or a test could
   * not run. All tests are cancelled and their candidates go back to the front, in order;
   * `unlanded` are the candidates of a `land` action that could not be carried out.
   */
  reset(unlanded: readonly string[] = []): CoreAction[] {
    this.requeueFrom(0);
    // A batch whose landing lost the race goes back to the very front, as it was.
    const back = unlanded.filter((id) => !this.known.has(id));
    for (const id of back) {
      this.known.add(id);
      this.arrival.set(id, -1);
    }
    this.pending.unshift(...back);
    return this.settle();
  }

  /**
   * Takes a candidate out without a verdict (its run was cancelled). If it sat in the train, the
   * batches from its own on are rebuilt without it.
   */
  withdraw(id: string): CoreAction[] {
    if (!this.known.has(id)) return [];
    const index = this.train.findIndex((b) => b.ids.includes(id));
    if (index >= 0) this.requeueFrom(index);
    for (const [testId, screen] of this.screens) {
      if (screen.id === id) {
        this.screens.delete(testId);
        this.actions.push({ kind: "cancel", testId });
      }
    }
    for (const list of [this.pending, this.suspects, this.unscreened]) {
      const at = list.indexOf(id);
      if (at >= 0) list.splice(at, 1);
    }
    this.known.delete(id);
    this.rounds.delete(id);
    this.arrival.delete(id);
    return this.settle();
  }

  /** Candidates still in the queue (waiting or in a batch), in queue order. */
  waiting(): string[] {
    return [
      ...this.train.flatMap((b) => b.ids),
      ...this.pending,
      ...[...this.screens.values()].map((s) => s.id),
      ...this.suspects,
      ...this.unscreened,
    ];
  }

  roundsOf(id: string): number {
    return this.rounds.get(id) ?? 0;
  }

  /** Tests started and not yet reported or cancelled. */
  inFlight(): number[] {
    return [
      ...this.train.flatMap((b) => (b.testId !== undefined && !b.verdict ? [b.testId] : [])),
      ...this.screens.keys(),
    ];
  }

  /**
   * A screening verdict: red alone on main means red on any main it would land on soon, so it
   * goes (its order is run again on the new main). Main may have moved since the screen started,
   * which is why a pass only admits the candidate to the train, whose tests are exact.
   */
  private admit(id: string, verdict: StackVerdict, suspect: boolean): void {
    switch (verdict.kind) {
      case "pass":
        // Suspects were ahead of everything pending when their batch went red; keep them there.
        if (suspect) this.rejoin(id);
        else this.pending.push(id);
        return;
      case "fail":
        this.eject(id, "failed", verdict.reason);
        return;
      case "conflict":
        this.eject(id, "conflict", verdict.reason);
        return;
      case "skipped":
        (suspect ? this.suspects : this.unscreened).unshift(id);
        return;
    }
  }

  private settle(): CoreAction[] {
    // Each pass either removes a head batch, splits it, or stops; so this ends.
    for (;;) {
      const head = this.train[0];
      if (!head?.verdict) break;
      this.resolveHead(head, head.verdict);
    }
    this.screenMore(this.suspects, true);
    this.fill();
    this.screenMore(this.unscreened, false);
    const out = this.actions;
    this.actions = [];
    return out;
  }

  private resolveHead(head: Batch, verdict: StackVerdict): void {
    switch (verdict.kind) {
      case "pass":
        this.train.shift();
        for (const id of head.ids) {
          this.known.delete(id);
          this.rounds.delete(id);
          this.arrival.delete(id);
        }
        this.actions.push({ kind: "land", testId: head.testId as number, ids: head.ids });
        return;
      case "conflict": {
        // Only the conflicting candidate leaves; the rest of its batch is tested again without it.
        this.requeueFrom(1);
        this.train.shift();
        const rest = head.ids.filter((id) => id !== verdict.id);
        if (rest.length === head.ids.length) {
          // A conflict naming no candidate of the batch cannot be pinned on one: test them again.
          this.pending.unshift(...rest);
          return;
        }
        this.pending.unshift(...rest);
        this.eject(verdict.id, "conflict", verdict.reason);
        return;
      }
      case "skipped":
        this.requeueFrom(0);
        return;
      case "fail": {
        this.requeueFrom(1);
        if (head.ids.length === 1) {
          this.train.shift();
          this.eject(head.ids[0] as string, "failed", verdict.reason);
          return;
        }
        this.train = this.isolate(head, verdict);
        return;
      }
      default: {
        const unknown: never = verdict;
        throw new Error(`unknown verdict ${JSON.stringify(unknown)}`);
      }
    }
  }

  /**
   * What a red batch of several becomes. Its members leave the train and are each tested alone on
   * main (a lane of their own), so the train goes on at once on the stack ahead of the batch
   * instead of waiting for a bisection; the ones that pass rejoin at the front. A conflicting
   * candidate is split off and waits, known not to apply, behind the rest of its batch.
   */
  private isolate(batch: Batch, verdict: StackVerdict): Batch[] {
    if (batch.ids.length === 1) return [batch];
    if (verdict.kind === "fail") {
      this.suspects.push(...batch.ids);
      return [];
    }
    if (verdict.kind === "conflict" && batch.ids.includes(verdict.id)) {
      return [{ ids: batch.ids.filter((id) => id !== verdict.id) }, { ids: [verdict.id], verdict }];
    }
    return [batch];
  }

  /** Cancels batches from index `from` on and puts their candidates back at the front, in order. */
  private requeueFrom(from: number): void {
    const dropped = this.train.splice(from);
    for (const batch of dropped) {
      if (batch.testId !== undefined && !batch.verdict) {
        this.actions.push({ kind: "cancel", testId: batch.testId });
      }
    }
    this.pending.unshift(...dropped.flatMap((b) => b.ids));
  }

  private rejoin(id: string): void {
    const seq = this.arrival.get(id) ?? 0;
    const at = this.pending.findIndex((other) => (this.arrival.get(other) ?? 0) > seq);
    this.pending.splice(at === -1 ? this.pending.length : at, 0, id);
  }

  private eject(id: string, cause: EjectCause, reason: string): void {
    this.known.delete(id);
    this.arrival.delete(id);
    this.rounds.delete(id);
    this.actions.push({ kind: "eject", id, cause, reason });
  }

  /** Starts tests for untested batches, then extends the train while there is room and work. */
  private fill(): void {
    for (let i = 0; i < this.train.length; i++) {
      const batch = this.train[i] as Batch;
      if (batch.testId === undefined && !batch.verdict && !this.start(i)) return;
    }
    while (this.train.length < 2 * this.options.depth && this.pending.length > 0) {
      // Stacking on a red batch of several would only test stacks doomed to be thrown away; a red
      // single candidate is different: it will be ejected, so the train goes on without it.
      const last = this.train.at(-1);
      if (last?.verdict && last.verdict.kind !== "pass" && !doomed(last)) return;
      if (this.inFlight().length >= this.options.depth) return;
      const ids = this.takeBatch();
      if (ids.length === 0) return;
      this.train.push({ ids });
      if (!this.start(this.train.length - 1)) return;
    }
  }

  /**
   * Screens suspects first (few, and each red one found frees the train of a culprit), then
   * arrivals with the runners the train leaves free: the train goes first, it lands changes.
   */
  private screenMore(queue: string[], suspect: boolean): void {
    while (queue.length > 0 && this.inFlight().length < this.options.depth) {
      const id = queue.shift() as string;
      if (this.roundsOf(id) >= this.options.maxRounds) {
        this.eject(id, "rounds", `took part in ${this.roundsOf(id)} gate rounds without landing`);
        continue;
      }
      const testId = this.nextTestId++;
      this.screens.set(testId, { id, suspect });
      this.rounds.set(id, this.roundsOf(id) + 1);
      this.actions.push({ kind: "test", testId, base: { kind: "main" }, add: [id] });
    }
  }

  private takeBatch(): string[] {
    const ids: string[] = [];
    while (ids.length < this.options.maxBatch && this.pending.length > 0) {
      const id = this.pending.shift() as string;
      if (this.roundsOf(id) >= this.options.maxRounds) {
        this.eject(
          id,
          "rounds",
          `took part in ${this.roundsOf(id)} gate rounds without landing (the cap is ${this.options.maxRounds})`,
        );
        continue;
      }
      ids.push(id);
    }
    return ids;
  }

  /** Starts the test of batch `index` if a runner is free and its base stack was built. */
  private start(index: number): boolean {
    if (this.inFlight().length >= this.options.depth) return false;
    const batch = this.train[index] as Batch;
    // The base is the nearest batch ahead that is not a red single candidate (it will be ejected).
    let below: Batch | undefined;
    for (let j = index - 1; j >= 0 && !below; j--) {
      const candidate = this.train[j] as Batch;
      if (!doomed(candidate)) below = candidate;
    }
    if (below && below.testId === undefined) return false;
    const testId = this.nextTestId++;
    batch.testId = testId;
    for (const id of batch.ids) this.rounds.set(id, this.roundsOf(id) + 1);
    const base: TestBase =
      below === undefined ? { kind: "main" } : { kind: "test", testId: below.testId as number };
    this.actions.push({ kind: "test", testId, base, add: [...batch.ids] });
    return true;
  }
}

/** A single candidate found red (or unable to apply): if everything ahead of it passes, it goes. */
function doomed(batch: Batch): boolean {
  return batch.ids.length === 1 && batch.verdict !== undefined && batch.verdict.kind !== "pass";
}
