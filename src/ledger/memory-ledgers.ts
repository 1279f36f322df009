import { PGlite } from "@electric-sql/pglite";
import { Kysely } from "kysely";
import { migrate } from "./migrate.ts";
import { PGliteDialect } from "./pglite-dialect.ts";
import type { Database } from "./schema.ts";
import { dropTemplate, readTemplate, saveTemplate, templateFile } from "./template.ts";

/**
 * In-memory ledgers (tests, throwaway runs) are opened by the hundred in one process, and a new
 * PGlite costs seconds of CPU on a small machine: initdb, then every migration. So each one is a
 * copy of the machine's cached template (template.ts; made once, by the first ledger), and a closed
 * one is wiped back to that empty, migrated state and handed to the next opener instead of being
 * thrown away.
 */
interface Template {
  dataDir: Blob;
  /** What the migrations put in an empty ledger (seed rows), put back by every wipe. */
  seeds: { table: string; rows: unknown[] }[];
  tables: string[];
  sequences: string[];
}

const MAX_IDLE = 4;
const idle: PGlite[] = [];
let template: Promise<Template> | undefined;

/** A memory ledger's PGlite, and how it is given back when its ledger closes. */
export interface MemoryPglite {
  pglite: PGlite;
  /** Notifications for this holder only: its listeners are dropped when it gives the PGlite back. */
  onNotification(listener: (channel: string, payload: string) => void): () => void;
  release(): Promise<void>;
}

export async function takeMemoryPglite(): Promise<MemoryPglite> {
  const pglite = idle.pop() ?? new PGlite({ loadDataDir: (await templateOnce()).dataDir });
  const listeners = new Set<() => void>();
  let released = false;
  return {
    pglite,
    onNotification(listener) {
      const off = pglite.onNotification((channel, payload) => {
        if (!released) listener(channel, payload);
      });
      listeners.add(off);
      return () => {
        off();
        listeners.delete(off);
      };
    },
    async release() {
      if (released) return;
      released = true;
      for (const off of listeners) off();
      await giveBack(pglite);
    },
  };
}

function templateOnce(): Promise<Template> {
  template ??= makeTemplate().catch((error) => {
    // A failed attempt is not kept: the next ledger tries again.
    template = undefined;
    throw error;
  });
  return template;
}

/** From the machine's cached template when there is one that loads (template.ts), else made. */
async function makeTemplate(): Promise<Template> {
  const cached = await readTemplate();
  if (cached) {
    try {
      return await describeTemplate(new PGlite({ loadDataDir: cached }), cached);
    } catch {
      await dropTemplate(await templateFile());
    }
  }
  return describeTemplate(new PGlite());
}

/** Migrates (a no-op on a copy of the template) and notes what a wipe must restore. */
async function describeTemplate(pglite: PGlite, cached?: Blob): Promise<Template> {
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  try {
    await migrate(db);
    const tables = (
      await pglite.query<{ name: string }>(
        `select quote_ident(tablename) as name from pg_tables
         where schemaname = current_schema() and tablename <> 'nightshift_migrations'`,
      )
    ).rows.map((row) => row.name);
    const sequences = (
      await pglite.query<{ name: string }>(
        `select quote_ident(sequence_name) as name from information_schema.sequences
         where sequence_schema = current_schema()`,
      )
    ).rows.map((row) => row.name);
    const seeds: Template["seeds"] = [];
    for (const table of tables) {
      const rows = (await pglite.query(`select * from ${table}`)).rows;
      if (rows.length > 0) seeds.push({ table, rows });
    }
    let dataDir = cached;
    if (!dataDir) {
      dataDir = await pglite.dumpDataDir("gzip");
      await saveTemplate(dataDir);
    }
    return { dataDir, seeds, tables, sequences };
  } finally {
    await db.destroy();
  }
}

/** Wipes the PGlite back to the template's state and keeps it for the next opener. */
async function giveBack(pglite: PGlite): Promise<void> {
  if (pglite.closed) return;
  try {
    if (idle.length >= MAX_IDLE) throw new Error("enough idle ledgers");
    const { seeds, tables, sequences } = await templateOnce();
    // Ends whatever the holder left open: a transaction, LISTENs, session settings and locks.
    await pglite.exec("rollback");
    await pglite.exec("discard all");
    await pglite.transaction(async (tx) => {
      await tx.exec(`truncate ${tables.join(", ")} restart identity cascade`);
      for (const name of sequences) await tx.exec(`alter sequence ${name} restart`);
      for (const { table, rows } of seeds) {
        await tx.query(
          `insert into ${table} select * from json_populate_recordset(null::${table}, $1)`,
          [JSON.stringify(rows)],
        );
      }
    });
    idle.push(pglite);
  } catch {
    await pglite.close();
  }
}

/** For a test: the number of wiped PGlites waiting for their next ledger. */
export function idleMemoryPglites(): number {
  return idle.length;
}
