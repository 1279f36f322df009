import { NightshiftError } from "../errors/index.ts";

/** An order (CLI flags, backlog file, inbox file) that cannot be taken in; nothing was added. */
export class OrderInputError extends NightshiftError {
  constructor(message: string, hint: string, details: Record<string, unknown> = {}) {
    super("order_invalid", message, { hint, details });
    this.name = "OrderInputError";
  }
}
