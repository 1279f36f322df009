import { NightshiftError } from "../errors/index.ts";

/** Bad input to `nightshift econ` or `report` (a model the price table lacks, a bad number). */
export class EconomicsInputError extends NightshiftError {
  constructor(message: string, hint: string, details: Record<string, unknown> = {}) {
    super("economics_invalid", message, { hint, details });
    this.name = "EconomicsInputError";
  }
}
