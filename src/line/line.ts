import { isTransientLedgerError } from "../ledger/index.ts";
import { SerialMergeQueue } from "../merge/index.ts";
import { Alarm } from "./alarm.ts";
import { CircuitBreaker, DEFAULT_CIRCUIT_BREAKER } from "./circuit-breaker.ts";
import { HaltSwitch, type LineContext } from "./context.ts";
import { RunEndings } from "./endings.ts";
import { Foreman } from "./foreman.ts";
import { MainGuard } from "./main-guard.ts";
import type { LineParts, LineSettings } from "./parts.ts";
import { pausedByPerson } from "./pause.ts";
import { Presence } from "./presence.ts";
import { type ProgressListener, ProgressReporter } from "./progress.ts";
import { Recovery } from "./recovery.ts";
import { RunWork } from "./run-work.ts";
import { Timekeeper } from "./timekeeper.ts";

/**
 * The line: claims work orders and starts a run on each, up to its concurrency, until the queue is
 * empty (or forever). Each role has its own module: the foreman sees a run through under its lease
 * (foreman.ts), the run's work goes agent, gates, merge queue (run-work.ts), runs of dead workers
 * are taken back (recovery.ts, with the timekeeper), and a red main halts the line (main-guard.ts).
 */
export class Line {
  private readonly ctx: LineContext;
  private readonly main: MainGuard;
  private readonly foreman: Foreman;
  private readonly work: RunWork;
  private readonly recovery: Recovery;
  /** Ends the idle wait early on a wake-up from the ledger. */
  private readonly alarm = new Alarm();

  constructor(parts: LineParts, settings: LineSettings) {
    this.ctx = {
      parts,
      settings,
      active: new Map(),
      queue: parts.mergeQueue ?? new SerialMergeQueue(parts.workspaces, parts.gates),
      progress: new ProgressReporter(parts.ledger),
      halt: new HaltSwitch(),
      breaker: new CircuitBreaker(
        parts.ledger,
        parts.logger,
        parts.workerId,
        settings.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER,
      ),
    };
    const endings = new RunEndings(this.ctx);
    this.main = new MainGuard(this.ctx);
    this.foreman = new Foreman(this.ctx, endings, this.main);
    this.work = new RunWork(this.ctx, endings, this.main);
    this.recovery = new Recovery(this.ctx, this.foreman, this.work);
  }

  /** The id this line's runs and leases carry in the ledger. */
  get workerId(): string {
    return this.ctx.parts.workerId;
  }

  /** Why the line stopped taking work before its queue was empty, if it did. */
  get haltedBecause(): string | undefined {
    return this.ctx.halt.reason;
  }

  /** Why the line is paused (by its circuit breaker or a person), if it is. */
  pausedBecause(): Promise<string | undefined> {
    return this.ctx.breaker.pausedBecause();
  }

  onProgress(listener: ProgressListener): void {
    this.ctx.progress.listen(listener);
  }

  /**
   * Works the queue until it is empty (or, with `forever`, until `signal` aborts). On abort, runs
   * in flight are cancelled and their orders go back to the queue. `drain` stops the claiming
   * only: the line returns once its runs in flight have ended (or `signal` cuts them short).
   */
  async run(
    options: { forever?: boolean; signal?: AbortSignal; drain?: AbortSignal } = {},
  ): Promise<void> {
    const signal = options.signal ?? new AbortController().signal;
    const drain = options.drain ?? new AbortController().signal;
    await this.ctx.parts.workspaces.assertSafeToLand();
    const presence = new Presence({
      ledger: this.ctx.parts.ledger,
      workerId: this.ctx.parts.workerId,
      concurrency: this.ctx.settings.concurrency,
      logger: this.ctx.parts.logger,
    });
    await presence.register();
    const drained = aborted(drain);
    const draining = drained.then(() => presence.draining());
    const unsubscribe = await this.listen();
    try {
      await this.recovery.recover(signal);
      const timekeeper = new Timekeeper({
        ledger: this.ctx.parts.ledger,
        workerId: this.ctx.parts.workerId,
        logger: this.ctx.parts.logger,
        takeBack: () => this.recovery.recover(signal, { expiredOnly: true }),
      });
      const stopped = aborted(signal);
      let claim = true;
      while (!signal.aborted) {
        await Promise.all([timekeeper.tick(), presence.beat()]);
        if (drain.aborted) {
          if (this.ctx.active.size === 0) break;
        } else if (claim || this.ctx.active.size === 0) await this.claimRound(signal);
        if (this.ctx.active.size === 0) {
          if (!options.forever || this.ctx.halt.reason) break;
          this.ctx.parts.logger.debug("idle: waiting for a wake-up or the next poll");
        }
        // Busy or idle, the loop turns at least once per poll interval: the timekeeper's promise
        // (lease plus one poll) must hold while this worker's own runs take their time. A busy
        // line claims again only when one of its runs ended, as before: a claim round checks
        // main, and between a landing and its run's settling that would test a main the merge
        // queue has already tested.
        const woke = await this.alarm.wait(this.ctx.settings.pollIntervalMs, [
          ...this.ctx.active.values(),
          stopped,
          ...(drain.aborted ? [] : [drained]),
        ]);
        claim = woke === "settled";
      }
      await Promise.allSettled(this.ctx.active.values());
      if (signal.aborted) await this.recovery.recover(undefined, { park: true });
    } finally {
      await unsubscribe();
      if (drain.aborted) await draining;
      await presence.stopped();
    }
  }

  /** Subscribes the alarm to the ledger's wake-ups; without them the line polls alone. */
  private async listen(): Promise<() => Promise<void>> {
    const { ledger, logger } = this.ctx.parts;
    try {
      return await ledger.onWork(this.alarm.ring, (error) =>
        logger.warn({ err: error }, "lost the ledger's wake-ups; finding work by polling"),
      );
    } catch (error) {
      logger.warn({ err: error }, "no wake-ups from the ledger; finding work by polling");
      return async () => {};
    }
  }

  /**
   * A claim round; a lost database connection ends the round, not the line (the pool reconnects,
   * and the next turn claims again), so a worker rides out a failover or a dropped session.
   */
  private async claimRound(signal: AbortSignal): Promise<void> {
    try {
      await this.fillSlots(signal);
    } catch (error) {
      if (!isTransientLedgerError(error)) throw error;
      this.ctx.parts.logger.warn(
        { err: error },
        "lost the ledger's connection while claiming; trying again",
      );
    }
  }

  private async fillSlots(signal: AbortSignal): Promise<void> {
    await this.ctx.parts.intake?.();
    for (const order of await this.ctx.parts.ledger.failBlockedOrders()) {
      await this.ctx.progress.report(order, {
        state: "failed",
        message: order.failure_reason ?? "blocked",
      });
    }
    if (await pausedByPerson(this.ctx.parts.ledger, this.ctx.parts.logger)) return;
    // Before the first claim and after every landing (a new main): main itself must pass.
    if (!this.ctx.halt.reason && !signal.aborted && !(await this.main.mainPasses(signal))) return;
    // A paused line starts nothing, except one probe run once its cool-down is over.
    const allowance = await this.ctx.breaker.allowance();
    if (allowance === "none") return;
    while (
      this.ctx.active.size < this.ctx.settings.concurrency &&
      !signal.aborted &&
      !this.ctx.halt.reason
    ) {
      const claim = await this.ctx.parts.ledger.claimNext({
        workerId: this.ctx.parts.workerId,
        leaseMs: this.ctx.settings.leaseMs,
        agent: this.ctx.settings.driver,
        model: this.ctx.settings.model,
        ...(this.ctx.settings.scopes ? { scopes: this.ctx.settings.scopes } : {}),
      });
      if (!claim) return;
      this.foreman.start(claim.order, claim.run, signal, this.work.fromClaim(claim));
      if (allowance === "probe") {
        this.ctx.breaker.probing(claim.run.id);
        return;
      }
    }
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
