/**
 * SQLSTATE classes and codes that say the connection went away rather than the statement was
 * wrong: the server was restarted or shut the session (57P01-57P03), the connection broke (class
 * 08), or a serialization failure or deadlock that a new try resolves (40001, 40P01).
 */
const TRANSIENT_CODES = new Set(["57P01", "57P02", "57P03", "40001", "40P01"]);

/**
 * True when a ledger call failed because the database connection was lost (or a transaction lost
 * a race), so the same call may succeed on a fresh connection: a worker then tries again on its
 * next turn instead of stopping. Anything else (a constraint, a bad query) is a real failure.
 */
export function isTransientLedgerError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (TRANSIENT_CODES.has(code) || code.startsWith("08"))) return true;
  // node-postgres reports a socket that closed under it without a SQLSTATE.
  return /Connection terminated|connection timeout|ECONNRESET|ECONNREFUSED|Client has encountered a connection error/i.test(
    error.message,
  );
}
