import { NightshiftError } from "../errors/index.ts";

/**
 * Gate errors mean the gate could not give a verdict (bad options, could not start, cancelled).
 * A failing check is never an error: it is a GateOutcome with passed=false.
 */
export type GateErrorCode =
  | "invalid_gate_options"
  | "gate_could_not_start"
  | "gate_aborted"
  | "gate_missing_context";

export class GateError extends NightshiftError {
  declare readonly code: GateErrorCode;
  declare readonly hint: string;
  readonly gate: string;

  constructor(
    code: GateErrorCode,
    gate: string,
    message: string,
    hint: string,
    options?: ErrorOptions,
  ) {
    super(code, `gate ${JSON.stringify(gate)}: ${message}`, {
      hint,
      cause: options?.cause,
      details: { gate },
    });
    this.name = "GateError";
    this.gate = gate;
  }
}
