/**
 * The base of every error nightshift raises on purpose. `code` is stable (tests and the console
 * match on it); `hint` tells the user how to fix the problem; `details` carries structured context.
 * `isNightshiftError` works across copies of the module, where `instanceof` may not.
 */
const BRAND = Symbol.for("nightshift.error");

export class NightshiftError extends Error {
  readonly [BRAND] = true;
  readonly code: string;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(
    code: string,
    message: string,
    options: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NightshiftError";
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }
}

export function isNightshiftError(error: unknown): error is NightshiftError {
  return typeof error === "object" && error !== null && BRAND in error;
}

/** One line (plus a hint line) a person can act on. */
export function describeError(error: unknown): string {
  if (isNightshiftError(error)) {
    return error.hint ? `${error.message}\n  fix: ${error.hint}` : error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
