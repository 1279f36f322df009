/**
 * Gate errors mean the gate could not give a verdict (bad options, could not start, cancelled).
 * A failing check is never an error: it is a GateOutcome with passed=false.
 */
export type GateErrorCode =
  | "invalid_gate_options"
  | "gate_could_not_start"
  | "gate_aborted"
  | "gate_missing_context";

export class GateError extends Error {
  readonly code: GateErrorCode;
  readonly gate: string;
  readonly hint: string;

  constructor(
    code: GateErrorCode,
    gate: string,
    message: string,
    hint: string,
    options?: ErrorOptions,
  ) {
    super(`gate ${JSON.stringify(gate)}: ${message}\nhow to fix: ${hint}`, options);
    this.name = "GateError";
    this.code = code;
    this.gate = gate;
    this.hint = hint;
  }
}
