import type { AgentEvent, AgentEventSink } from "../agents/index.ts";
import type { Ledger } from "../ledger/index.ts";
import type { SandboxEvent, SandboxViolation } from "../sandbox/index.ts";

const MAX_EVIDENCE = 20;

/**
 * Sits between a run and its recorder: the sandbox's events become run events, and a run whose
 * blocked attempts (from its sandbox or refused by its file tools) reach `defectAfter` raises one
 * "escape_attempts" defect for the supervisor, with the attempts as evidence.
 */
export class SandboxWatch {
  private readonly seen: SandboxViolation[] = [];
  private raising: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ledger: Ledger,
    private readonly run: { runId: number; orderId: number },
    private readonly sink: AgentEventSink,
    private readonly defectAfter: number,
  ) {}

  /** For the agent's own events: recorded as they are, violations counted. */
  record = (event: AgentEvent): void => {
    this.sink(event);
    if (event.kind !== "sandbox_violation") return;
    this.count({
      kind: event.violation as SandboxViolation["kind"],
      detail: event.detail,
      ...(event.command ? { command: event.command } : {}),
    });
  };

  /** For the sandbox's events. */
  onSandboxEvent = (event: SandboxEvent): void => {
    switch (event.kind) {
      case "violation":
        this.record({
          kind: "sandbox_violation",
          violation: event.violation.kind,
          detail: event.violation.detail,
          ...(event.violation.command ? { command: event.violation.command } : {}),
        });
        break;
      case "limits":
        this.sink({ kind: "sandbox_limits", ...event.note });
        break;
      case "unsandboxed":
        this.sink({ kind: "sandbox_warning", message: event.message });
        break;
      default: {
        const unknown: never = event;
        throw new Error(`unknown sandbox event ${JSON.stringify(unknown)}`);
      }
    }
  };

  get violations(): readonly SandboxViolation[] {
    return this.seen;
  }

  /** Waits for a defect being raised; never rejects (a failed insert is logged by the caller). */
  settled(): Promise<unknown> {
    return this.raising;
  }

  private count(violation: SandboxViolation): void {
    this.seen.push(violation);
    if (this.seen.length !== this.defectAfter) return;
    const kinds = [...new Set(this.seen.map((v) => v.kind))].join(", ");
    this.raising = this.ledger
      .raiseDefect({
        kind: "escape_attempts",
        runId: this.run.runId,
        orderId: this.run.orderId,
        summary: `run ${this.run.runId} tried to cross its sandbox ${this.defectAfter} times (${kinds})`,
        evidence: this.seen.slice(0, MAX_EVIDENCE),
      })
      .catch((error: unknown) => error);
  }
}
