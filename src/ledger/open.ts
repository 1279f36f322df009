import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { NightshiftError } from "../errors/index.ts";
import { Ledger } from "./ledger.ts";
import type { LedgerLocation } from "./location.ts";
import { lockDataDir } from "./lock.ts";
import { migrate } from "./migrate.ts";
import { PGliteDialect } from "./pglite-dialect.ts";
import type { Database } from "./schema.ts";

export { type LedgerLocation, ledgerLocationFor } from "./location.ts";

/** Opens (creating and migrating as needed) the ledger; `purpose` names the holder in lock errors. */
export async function openLedger(
  location: LedgerLocation,
  purpose = "nightshift",
): Promise<Ledger> {
  switch (location.kind) {
    case "memory":
      return ledgerOver(new Kysely<Database>({ dialect: new PGliteDialect(new PGlite()) }));
    case "embedded": {
      const unlock = await lockDataDir(location.dataDir, purpose);
      try {
        const pglite = await PGlite.create(location.dataDir);
        return await ledgerOver(
          new Kysely<Database>({ dialect: new PGliteDialect(pglite) }),
          unlock,
        );
      } catch (error) {
        await unlock();
        throw wrapOpenError(error, location.dataDir);
      }
    }
    case "postgres":
      return openPostgres(location.url, location.schema);
    default: {
      const unknownKind: never = location;
      throw new Error(`unknown ledger location ${JSON.stringify(unknownKind)}`);
    }
  }
}

async function openPostgres(url: string, schema?: string): Promise<Ledger> {
  if (schema && !/^[a-z_][a-z0-9_]*$/.test(schema)) {
    throw new NightshiftError("ledger_config", `invalid schema name ${JSON.stringify(schema)}`, {
      hint: "use lower-case letters, digits and underscores",
    });
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    if (schema) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } catch (error) {
    await db.destroy();
    throw new NightshiftError("ledger_unreachable", `cannot reach PostgreSQL at ${redact(url)}`, {
      hint: "check NIGHTSHIFT_DATABASE_URL and that the server is running",
      cause: error,
    });
  }
  return ledgerOver(db);
}

async function ledgerOver(db: Kysely<Database>, unlock?: () => Promise<void>): Promise<Ledger> {
  try {
    await migrate(db);
  } catch (error) {
    await db.destroy();
    await unlock?.();
    throw error;
  }
  return new Ledger(db, async () => {
    await db.destroy();
    await unlock?.();
  });
}

function wrapOpenError(error: unknown, dataDir: string): NightshiftError {
  return new NightshiftError("ledger_corrupt", `cannot open the embedded ledger in ${dataDir}`, {
    hint: "move that folder aside to start a fresh ledger (the repository is not affected)",
    cause: error,
  });
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, "//$1:***@");
}
