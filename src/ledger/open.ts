import { readdir, rm } from "node:fs/promises";
import { Kysely, PostgresDialect, sql } from "kysely";
import type pg from "pg";
import { NightshiftError } from "../errors/index.ts";
import { Ledger, type WakeupSource } from "./ledger.ts";
import type { LedgerLocation } from "./location.ts";
import { lockDataDir } from "./lock.ts";
import { migrate } from "./migrate.ts";
import { PGliteDialect } from "./pglite-dialect.ts";
import { type PGliteSession, ThreadedPGlite } from "./pglite-thread.ts";
import type { Database } from "./schema.ts";
import { cachedTemplate, dropTemplate, saveTemplate } from "./template.ts";

export { type LedgerLocation, ledgerLocationFor } from "./location.ts";

type PgModule = typeof pg;

/** Opens (creating and migrating as needed) the ledger; `purpose` names the holder in lock errors. */
export async function openLedger(
  location: LedgerLocation,
  purpose = "nightshift",
): Promise<Ledger> {
  switch (location.kind) {
    case "memory": {
      // Loaded here, not at the top: PGlite on this thread is for memory ledgers only, and every
      // CLI call that opens the embedded ledger would pay for loading it.
      const { takeMemoryPglite } = await import("./memory-ledgers.ts");
      const memory = await takeMemoryPglite();
      const db = new Kysely<Database>({
        dialect: new PGliteDialect(memory.pglite, memory.release),
      });
      return ledgerOver(db, { wakeups: pgliteWakeups(memory, db) });
    }
    case "embedded": {
      const unlock = await lockDataDir(location.dataDir, purpose);
      try {
        const { pglite, fresh } = await openEmbedded(location.dataDir);
        const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
        const ledger = await ledgerOver(db, { unlock, wakeups: pgliteWakeups(pglite, db) });
        // The first ledger made the long way on this machine is the next ones' template; one
        // that cannot be dumped only means the next ledger is made the long way too.
        if (fresh) {
          await pglite.dumpDataDir().then(
            (dump) => saveTemplate(dump),
            () => undefined,
          );
        }
        return ledger;
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

/**
 * The embedded ledger's PGlite, on a thread of its own: PGlite runs each statement synchronously,
 * which on the main thread held up the gateway's requests and the line's event loop
 * (pglite-thread.ts). A new (absent or empty) data directory starts as a copy of the cached
 * template when there is one; `fresh` says it was made the long way, by initdb.
 */
async function openEmbedded(dataDir: string): Promise<{ pglite: ThreadedPGlite; fresh: boolean }> {
  const empty = (await readdir(dataDir).catch(() => [])).length === 0;
  const template = empty ? await cachedTemplate() : undefined;
  if (template) {
    try {
      return { pglite: await ThreadedPGlite.create(dataDir, template), fresh: false };
    } catch {
      // A template that does not load costs this ledger the long way, nothing else: the folder
      // was empty before, so what the failed copy left in it is all that is removed.
      await dropTemplate(template);
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  return { pglite: await ThreadedPGlite.create(dataDir), fresh: empty };
}

async function openPostgres(url: string, schema?: string): Promise<Ledger> {
  if (schema && !/^[a-z_][a-z0-9_]*$/.test(schema)) {
    throw new NightshiftError("ledger_config", `invalid schema name ${JSON.stringify(schema)}`, {
      hint: "use lower-case letters, digits and underscores",
    });
  }
  // Loaded only for a server ledger: the embedded one (every CLI call by default) never uses it.
  const { default: pg } = await import("pg");
  const db = postgresPool(pg, url, schema, 10);
  // Claims have connections of their own: a worker with hundreds of runs in flight keeps the main
  // pool busy with their heartbeats and phase changes, and the next claim would wait behind them.
  const claimsDb = postgresPool(pg, url, schema, 2);
  try {
    if (schema) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } catch (error) {
    await Promise.all([db.destroy(), claimsDb.destroy()]);
    throw new NightshiftError("ledger_unreachable", `cannot reach PostgreSQL at ${redact(url)}`, {
      hint: "check NIGHTSHIFT_DATABASE_URL and that the server is running",
      cause: error,
    });
  }
  return ledgerOver(db, {
    wakeups: postgresWakeups(pg, url, db),
    claimsDb,
  });
}

function postgresPool(
  pg: PgModule,
  url: string,
  schema: string | undefined,
  max: number,
): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // A connection the server dropped (a restart, pg_terminate_backend, a network cut) is an
  // 'error' event, on the pool while the connection is idle and on the connection itself while it
  // is checked out (inside a transaction, between its statements): unheard, either kills the
  // process. The pool replaces a broken connection; a query that was running on it fails and is
  // reported by whoever made it.
  pool.on("error", () => undefined);
  pool.on("connect", (client) => client.on("error", () => undefined));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** The channel of migration 0008's trigger. */
const WAKEUP_CHANNEL = "nightshift_work";

/**
 * Wake-ups on a PostgreSQL server: one connection of its own per subscriber, outside the pool,
 * because a LISTEN lasts as long as its session and a pooled connection is handed to others.
 */
function postgresWakeups(pg: PgModule, url: string, db: Kysely<Database>): WakeupSource {
  return async (onWake, onError) => {
    const schema = (await sql<{ schema: string }>`select current_schema() as schema`.execute(db))
      .rows[0]?.schema;
    const client = new pg.Client({ connectionString: url });
    let closing = false;
    client.on("notification", (message) => {
      if (message.channel === WAKEUP_CHANNEL && message.payload === schema) onWake();
    });
    client.on("error", (error) => {
      if (!closing) onError(error);
    });
    client.on("end", () => {
      if (!closing) {
        onError(new NightshiftError("ledger_wakeups_lost", "the wake-up connection closed"));
      }
    });
    try {
      await client.connect();
      await client.query(`listen ${WAKEUP_CHANNEL}`);
    } catch (error) {
      closing = true;
      await client.end().catch(() => undefined);
      throw new NightshiftError(
        "ledger_unreachable",
        `cannot listen for wake-ups at ${redact(url)}`,
        {
          hint: "check NIGHTSHIFT_DATABASE_URL and that the server is running",
          cause: error,
        },
      );
    }
    return async () => {
      closing = true;
      await client.end().catch(() => undefined);
    };
  };
}

/**
 * Wake-ups on the embedded ledger: PGlite is one session, so only this process's own changes
 * notify (orders arriving through the inbox are still found by polling). LISTEN goes through
 * kysely so that it waits its turn on that session instead of landing inside another caller's
 * transaction; it is never undone (a session listening with nobody subscribed costs nothing).
 */
function pgliteWakeups(
  pglite: Pick<PGliteSession, "onNotification">,
  db: Kysely<Database>,
): WakeupSource {
  return async (onWake) => {
    const off = pglite.onNotification((channel) => {
      if (channel === WAKEUP_CHANNEL) onWake();
    });
    await sql.raw(`listen ${WAKEUP_CHANNEL}`).execute(db);
    return async () => off();
  };
}

async function ledgerOver(
  db: Kysely<Database>,
  extras: { unlock?: () => Promise<void>; wakeups?: WakeupSource; claimsDb?: Kysely<Database> },
): Promise<Ledger> {
  const { unlock, wakeups, claimsDb } = extras;
  const close = async () => {
    await Promise.all([db.destroy(), claimsDb?.destroy()]);
    await unlock?.();
  };
  try {
    await migrate(db);
  } catch (error) {
    await close();
    throw error;
  }
  return new Ledger(db, close, {
    ...(wakeups ? { wakeups } : {}),
    ...(claimsDb ? { claimsDb } : {}),
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
