/** A failure the simulator reports to the client; `status` is the HTTP status it answers with. */
export class SimulatorError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 500) {
    super(message);
    this.name = "SimulatorError";
    this.code = code;
    this.status = status;
  }
}
