import { NightshiftError } from "../errors/index.ts";

/** A failure the simulator reports to the client; `status` is the HTTP status it answers with. */
export class SimulatorError extends NightshiftError {
  readonly status: number;

  constructor(code: string, message: string, status = 500) {
    super(code, message, { details: { status } });
    this.name = "SimulatorError";
    this.status = status;
  }
}
