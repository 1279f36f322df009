import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterEach, beforeEach } from "vitest";
import { type Ledger, type LedgerLocation, openLedger } from "../../src/ledger/index.ts";

export const POSTGRES_URL =
  process.env.NIGHTSHIFT_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A fresh schema on the real PostgreSQL server, so test files can run in parallel. */
export function freshSchemaName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

/** Both ledger backends, so every ledger promise is checked on each. */
export const ledgerBackends: { name: string; location: () => LedgerLocation }[] = [
  { name: "embedded PGlite", location: () => ({ kind: "memory" }) },
  {
    name: "PostgreSQL server",
    location: () => ({ kind: "postgres", url: POSTGRES_URL, schema: freshSchemaName("ledger") }),
  },
];

export async function openTestLedger(location: LedgerLocation) {
  const ledger = await openLedger(location, "test");
  return {
    ledger,
    async dispose() {
      await ledger.close();
      if (location.kind === "postgres" && location.schema) await dropSchema(location.schema);
    },
  };
}

/**
 * Gives every test of the enclosing `describe` a ledger of its own at a fresh `location()`, handed
 * to `use` before the test and closed (its schema dropped) after it.
 */
export function freshLedgerEachTest(
  location: () => LedgerLocation,
  use: (ledger: Ledger) => void,
): void {
  let dispose: (() => Promise<void>) | undefined;
  beforeEach(async () => {
    const opened = await openTestLedger(location());
    dispose = opened.dispose;
    use(opened.ledger);
  });
  afterEach(async () => {
    await dispose?.();
    dispose = undefined;
  });
}
