import path from "node:path";

// Apart from open.ts so that knowing where the ledger lives does not load PGlite, pg and kysely
// (the CLI's `status` checks its cache against the data folder before it opens anything).

export type LedgerLocation =
  /** Embedded PGlite in a folder (the default: `<state_dir>/ledger`). */
  | { kind: "embedded"; dataDir: string }
  /** Embedded PGlite in memory: for tests and throwaway runs. */
  | { kind: "memory" }
  /** A PostgreSQL server; `schema` isolates one factory (or one test file) from others. */
  | { kind: "postgres"; url: string; schema?: string };

/** NIGHTSHIFT_DATABASE_URL selects PostgreSQL; otherwise the embedded ledger under the state dir. */
export function ledgerLocationFor(
  stateDir: string,
  env: NodeJS.ProcessEnv = process.env,
): LedgerLocation {
  const url = env.NIGHTSHIFT_DATABASE_URL;
  if (url) return { kind: "postgres", url, schema: env.NIGHTSHIFT_DATABASE_SCHEMA || undefined };
  return { kind: "embedded", dataDir: path.join(stateDir, "ledger") };
}
