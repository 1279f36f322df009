import type { Logger } from "pino";
import type { Ledger, LineState, RunEnding } from "../ledger/index.ts";

export interface CircuitBreakerSettings {
  enabled: boolean;
  /** How many of the most recent runs are looked at. */
  window: number;
  /** Runs among them failed for reasons outside their orders that pause the line. */
  failures: number;
  /** After this long paused, one probe run is let through; 0: only a person resumes the line. */
  coolDownMs: number;
}

export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerSettings = {
  enabled: true,
  window: 10,
  failures: 5,
  coolDownMs: 15 * 60_000,
};

/** How many runs the line may start now. */
export type Allowance = "all" | "probe" | "none";

const outsideCauses = new WeakSet<RunEnding>();

/**
 * Marks an ending as caused outside its order (a model provider failing, main failing its gates,
 * an internal error, a stalled run): such endings are what the circuit breaker counts.
 */
export function outsideTheOrder<T extends RunEnding>(ending: T): T {
  outsideCauses.add(ending);
  return ending;
}

export function isOutsideTheOrder(ending: RunEnding): boolean {
  return outsideCauses.has(ending);
}

/**
 * Pauses the line when most recent runs fail for reasons outside their orders (an upstream
 * outage, a broken main): starting more runs would only burn attempts and money. The pause is
 * written to the ledger, so every worker stops claiming and `nightshift status` and the console
 * say why. It ends when a person resumes the line, or after the cool-down when one probe run
 * ends well (landed, or failed for its order's own reasons).
 */
export class CircuitBreaker {
  /** The latest runs' endings, oldest first: true for a failure outside its order. */
  private readonly recent: boolean[] = [];
  private probeRun: number | undefined;

  constructor(
    private readonly ledger: Ledger,
    private readonly logger: Logger,
    private readonly workerId: string,
    private readonly settings: CircuitBreakerSettings,
  ) {}

  /** Who the breaker's pauses are recorded as (see isBreakerPause). */
  private get actor(): string {
    return `${BREAKER_ACTOR} (${this.workerId})`;
  }

  /** Whether the line may start runs now: all it has room for, one probe run, or none. */
  async allowance(): Promise<Allowance> {
    const state = await this.ledger.line.state();
    if (!state.paused) {
      this.probeRun = undefined;
      return "all";
    }
    // A person's pause holds until a person resumes; only the breaker's own pause is probed.
    if (!isBreakerPause(state) || this.probeRun !== undefined || this.settings.coolDownMs <= 0) {
      return "none";
    }
    return Date.now() - state.changed_at.getTime() >= this.settings.coolDownMs ? "probe" : "none";
  }

  /** Why the line is paused, if it is. */
  async pausedBecause(): Promise<string | undefined> {
    const state = await this.ledger.line.state();
    return state.paused ? state.reason || `paused by ${state.changed_by}` : undefined;
  }

  probing(runId: number): void {
    this.probeRun = runId;
    this.logger.warn({ runId }, "the line is paused: starting one probe run after the cool-down");
  }

  /** Counts a settled run; pauses the line, or ends a probe, as its ending says. */
  async settled(runId: number, ending: RunEnding): Promise<void> {
    const outside = isOutsideTheOrder(ending);
    if (runId === this.probeRun) {
      this.probeRun = undefined;
      await this.probed(runId, ending, outside);
      return;
    }
    if (!this.settings.enabled) return;
    this.recent.push(outside);
    if (this.recent.length > this.settings.window) this.recent.shift();
    const failed = this.recent.filter(Boolean).length;
    if (failed < this.settings.failures) return;
    const reason = `${failed} of the last ${this.recent.length} runs failed for reasons outside their orders (latest: ${ending.reason})`;
    this.recent.length = 0;
    if (await this.ledger.line.pauseUnlessPaused(this.actor, reason)) {
      this.logger.error(
        { reason, coolDownMs: this.settings.coolDownMs },
        "the line pauses itself: `nightshift resume` resumes it",
      );
    }
  }

  private async probed(runId: number, ending: RunEnding, outside: boolean): Promise<void> {
    if (outside) {
      const reason = `the probe run ${runId} failed as well: ${ending.reason}`;
      await this.ledger.line.pauseUnlessPaused(this.actor, reason, { restart: true });
      this.logger.error({ runId, reason }, "the line stays paused");
      return;
    }
    if (await this.ledger.line.resumeIfPaused(this.actor, `probe run ${runId} ended well`)) {
      this.logger.info(
        { runId, outcome: ending.outcome },
        "the probe run ended well: the line resumes",
      );
    }
  }
}

const BREAKER_ACTOR = "circuit breaker";

/** Whether the line's pause is the circuit breaker's own (which a probe run may lift), not a person's. */
export function isBreakerPause(state: Pick<LineState, "paused" | "changed_by">): boolean {
  return state.paused && state.changed_by.startsWith(BREAKER_ACTOR);
}
