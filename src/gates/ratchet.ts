import type { Gate, GateContext, GateOutcome } from "./types.ts";

export interface RatchetResult {
  passed: boolean;
  outcomes: GateOutcome[];
}

/** Runs gates in order; the first failure stops the line, since later gates would judge a red candidate. */
export async function runGates(gates: Gate[], ctx: GateContext): Promise<RatchetResult> {
  const outcomes: GateOutcome[] = [];
  for (const gate of gates) {
    const outcome = await gate.run(ctx);
    outcomes.push(outcome);
    if (!outcome.passed) return { passed: false, outcomes };
  }
  return { passed: true, outcomes };
}
