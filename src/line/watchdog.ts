import { createHash } from "node:crypto";
import type { AgentEvent, AgentEventSink } from "../agents/index.ts";
import type { Ledger } from "../ledger/index.ts";

/** The ways a run melts down that the watchdog stops; each is raised as defect kind `meltdown_<kind>`. */
export const MELTDOWN_KINDS = ["stall", "loop", "runaway", "flood", "escape", "limit"] as const;
export type MeltdownKind = (typeof MELTDOWN_KINDS)[number];

export interface WatchdogLimits {
  /** A run with no agent event for this long is stalled. */
  stallMs: number;
  /** This many identical tool calls in a row, or the same call failing this many times, is a loop. */
  loopRepeats: number;
  /** Tokens the gateway metered to the run (input plus output) beyond which it runs away. */
  maxTokens: number | undefined;
  /** Cost the gateway metered to the run beyond which it runs away. */
  maxUsd: number | undefined;
  /** Bytes of agent output (messages, tool output) beyond which the run floods. */
  maxOutputBytes: number;
  /** Blocked sandbox attempts at which the run is stopped. */
  escapeLimit: number;
  /** How often the run's metered spend is read from the ledger. */
  checkIntervalMs: number;
  /** What happens to the order: "retry" gets a fresh run with feedback, "fail" goes to a person. */
  onMeltdown: "retry" | "fail";
}

export const DEFAULT_WATCHDOG: WatchdogLimits = {
  stallMs: 10 * 60_000,
  loopRepeats: 6,
  maxTokens: undefined,
  maxUsd: undefined,
  maxOutputBytes: 32 * 1024 * 1024,
  escapeLimit: 10,
  checkIntervalMs: 5_000,
  onMeltdown: "retry",
};

/** Why the watchdog stopped a run: what a person reads, what the next attempt is told, and the evidence. */
export interface Meltdown {
  kind: MeltdownKind;
  summary: string;
  feedback: string;
  evidence: Record<string, unknown>;
}

const RECENT_EVENTS = 12;
/** Sandbox violations that are a limit the kernel enforced (the command was killed). */
const SANDBOX_LIMITS = new Set(["process_limit", "memory_limit", "disk_limit", "cpu_limit"]);
const MAX_SHOWN = 300;

/**
 * Watches one run's agent while it works: its events pass through on their way to the recorder,
 * and a timer reads the run's metered spend from the ledger. When the run stalls, loops, runs away
 * on tokens or cost, floods its output or keeps hitting its sandbox, the watchdog raises a
 * `meltdown_<kind>` defect with the evidence and stops the agent (its own signal, not the line's:
 * the foreman must still settle the run).
 */
export class Watchdog {
  private readonly controller = new AbortController();
  private readonly recent: AgentEvent[] = [];
  private readonly failures = new Map<string, number>();
  private streak = { key: "", count: 0, call: "" };
  private outputBytes = 0;
  private violations = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  private spendTimer: NodeJS.Timeout | undefined;
  private tripped: Meltdown | undefined;
  private raising: Promise<unknown> = Promise.resolve();
  private readonly calls = new Map<string, string>();

  constructor(
    private readonly ledger: Ledger,
    private readonly run: { runId: number; orderId: number },
    private readonly sink: AgentEventSink,
    private readonly limits: WatchdogLimits,
    lineSignal: AbortSignal,
  ) {
    if (lineSignal.aborted) this.controller.abort();
    else lineSignal.addEventListener("abort", this.stopOnLine, { once: true });
    this.armStall();
    this.spendTimer = setInterval(() => void this.checkSpend(), limits.checkIntervalMs);
    this.spendTimer.unref();
  }

  /** The agent's stop signal: aborts when the line stops the run or the watchdog does. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the run was stopped, if the watchdog stopped it. */
  get meltdown(): Meltdown | undefined {
    return this.tripped;
  }

  record = (event: AgentEvent): void => {
    this.sink(event);
    if (this.tripped) return;
    this.armStall();
    this.recent.push(event);
    if (this.recent.length > RECENT_EVENTS) this.recent.shift();
    switch (event.kind) {
      case "tool_call":
        this.onToolCall(event.callId, event.tool, event.input);
        break;
      case "tool_result":
        this.outputBytes += Buffer.byteLength(event.output);
        if (event.isError) this.onFailedCall(event.callId);
        break;
      case "message":
        this.outputBytes += Buffer.byteLength(event.text);
        break;
      case "sandbox_violation":
        if (SANDBOX_LIMITS.has(event.violation)) {
          this.onLimitHit(event.violation, event.detail, event.command);
          break;
        }
        this.violations += 1;
        if (this.violations >= this.limits.escapeLimit) {
          this.trip({
            kind: "escape",
            summary: `run ${this.run.runId} hit its sandbox's walls ${this.violations} times (limit ${this.limits.escapeLimit})`,
            feedback:
              "The previous attempt was stopped because it kept trying to reach outside its workspace (other folders, host secrets, the network). Work only inside the repository you were given.",
            evidence: { violations: this.violations },
          });
        }
        break;
      default:
        break;
    }
    if (!this.tripped && this.outputBytes > this.limits.maxOutputBytes) {
      this.trip({
        kind: "flood",
        summary: `run ${this.run.runId} produced ${mib(this.outputBytes)} of output (limit ${mib(this.limits.maxOutputBytes)})`,
        feedback:
          "The previous attempt was stopped because it produced far too much output. Print less: read files in parts, filter command output.",
        evidence: { outputBytes: this.outputBytes },
      });
    }
  };

  /** Stops watching: the agent has returned. */
  stop(): void {
    this.disarm();
  }

  /**
   * Stops watching and waits for a defect being raised; never rejects. The spend is read once
   * more (call it after the run's spend is recorded): an agent quicker than the check interval
   * still has its limit.
   */
  async close(): Promise<void> {
    this.disarm();
    if (!this.controller.signal.aborted) await this.checkSpend();
    await this.raising;
  }

  private readonly stopOnLine = (): void => {
    this.disarm();
    this.controller.abort();
  };

  private onToolCall(callId: string, tool: string, input: unknown): void {
    const call = `${tool} ${clip(JSON.stringify(input) ?? "")}`;
    const key = createHash("sha256")
      .update(`${tool}\0${JSON.stringify(input) ?? ""}`)
      .digest("hex");
    this.calls.set(callId, key);
    this.streak =
      this.streak.key === key
        ? { ...this.streak, count: this.streak.count + 1 }
        : { key, count: 1, call };
    if (this.streak.count >= this.limits.loopRepeats) {
      this.trip({
        kind: "loop",
        summary: `run ${this.run.runId} made the same tool call ${this.streak.count} times in a row: ${call}`,
        feedback: `The previous attempt was stopped because it made the same tool call ${this.streak.count} times in a row (${call}) without making progress. Do not repeat a call that already gave its answer; change your approach.`,
        evidence: { call, times: this.streak.count },
      });
    }
  }

  private onFailedCall(callId: string): void {
    const key = this.calls.get(callId);
    if (!key) return;
    const times = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, times);
    if (times < this.limits.loopRepeats) return;
    const call = this.streak.key === key ? this.streak.call : "a tool call";
    this.trip({
      kind: "loop",
      summary: `run ${this.run.runId} repeated the same failing tool call ${times} times: ${call}`,
      feedback: `The previous attempt was stopped because it repeated the same failing tool call ${times} times (${call}). When a call fails, read the error and do something different.`,
      evidence: { call, failures: times },
    });
  }

  private armStall(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => {
      const seconds = Math.round(this.limits.stallMs / 1000);
      this.trip({
        kind: "stall",
        summary: `run ${this.run.runId} showed no activity for ${seconds} s`,
        feedback: `The previous attempt was stopped because nothing happened for ${seconds} seconds (no model reply, no tool call). Keep commands short and avoid anything that waits for input.`,
        evidence: { idleMs: this.limits.stallMs },
      });
    }, this.limits.stallMs);
    this.stallTimer.unref();
  }

  private async checkSpend(): Promise<void> {
    const { maxTokens, maxUsd } = this.limits;
    if (this.tripped || (maxTokens === undefined && maxUsd === undefined)) return;
    if (this.controller.signal.aborted) return;
    const run = await this.ledger.getRun(this.run.runId).catch(() => undefined);
    if (!run || this.tripped) return;
    const tokens = run.input_tokens + run.output_tokens;
    const spend = { tokens, costUsd: run.cost_usd };
    if (maxTokens !== undefined && tokens > maxTokens) {
      this.trip({
        kind: "runaway",
        summary: `run ${this.run.runId} used ${tokens} tokens (limit ${maxTokens})`,
        feedback: `The previous attempt was stopped after using ${tokens} tokens, more than the ${maxTokens} a run may use. Work more economically: read less, change less.`,
        evidence: spend,
      });
    } else if (maxUsd !== undefined && run.cost_usd > maxUsd) {
      this.trip({
        kind: "runaway",
        summary: `run ${this.run.runId} cost $${run.cost_usd.toFixed(4)} (limit $${maxUsd})`,
        feedback: `The previous attempt was stopped after spending $${run.cost_usd.toFixed(4)}, more than the $${maxUsd} a run may spend. Work more economically: read less, change less.`,
        evidence: spend,
      });
    }
  }

  /**
   * The kernel killed a command for one of the run's limits: the run ends with the limit named, as
   * its next command would most likely hit it again.
   */
  private onLimitHit(violation: string, detail: string, command: string | undefined): void {
    const limit = violation.replace("_limit", "");
    this.trip({
      kind: "limit",
      summary: `run ${this.run.runId} hit its sandbox's ${limit} limit${command ? ` running \`${clip(command)}\`` : ""}: ${clip(detail)}`,
      feedback: `The previous attempt was stopped because a command${command ? ` (\`${clip(command)}\`)` : ""} hit the sandbox's ${limit} limit: ${clip(detail)}. Use fewer resources: smaller files and outputs, fewer processes, less memory.`,
      evidence: { violation, detail, ...(command ? { command } : {}) },
    });
  }

  private trip(meltdown: Meltdown): void {
    if (this.tripped) return;
    this.tripped = {
      ...meltdown,
      evidence: { ...meltdown.evidence, recentEvents: this.recent.map(shorten) },
    };
    this.disarm();
    this.controller.abort();
    this.raising = this.ledger
      .raiseDefect({
        kind: `meltdown_${meltdown.kind}`,
        runId: this.run.runId,
        orderId: this.run.orderId,
        summary: meltdown.summary,
        evidence: this.tripped.evidence,
      })
      .catch((error: unknown) => error);
  }

  private disarm(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    if (this.spendTimer) clearInterval(this.spendTimer);
    this.stallTimer = undefined;
    this.spendTimer = undefined;
  }
}

function clip(text: string): string {
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 3)}...` : text;
}

/** An event as evidence: long texts cut, so a flood does not flood the defect too. */
function shorten(event: AgentEvent): unknown {
  return JSON.parse(
    JSON.stringify(event, (_key, value: unknown) =>
      typeof value === "string" ? clip(value) : value,
    ),
  );
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
