import { PGlite } from "@electric-sql/pglite";
import { Kysely } from "kysely";
import { migrate } from "./migrate.ts";
import { PGliteDialect } from "./pglite-dialect.ts";
import type { Database } from "./schema.ts";

/**
 * A migrated, empty ledger's data folder, made once per process. A new PGlite runs initdb and then
 * every migration (seconds of CPU on a small machine); one loaded from this copy skips both, which
 * is what makes throwaway ledgers (tests, capacity runs) cheap to open by the hundred.
 */
let template: Promise<Blob> | undefined;

async function migratedEmptyLedger(): Promise<Blob> {
  const pglite = new PGlite();
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  try {
    await migrate(db);
    return await pglite.dumpDataDir("none");
  } finally {
    await db.destroy();
  }
}

/** A new in-memory PGlite holding an empty, migrated ledger. */
export async function freshMemoryPglite(): Promise<PGlite> {
  template ??= migratedEmptyLedger().catch((error) => {
    // A failed attempt is not kept: the next ledger tries again.
    template = undefined;
    throw error;
  });
  return new PGlite({ loadDataDir: await template });
}
