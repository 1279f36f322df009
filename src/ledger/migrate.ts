import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.ts";

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));
/** Arbitrary but fixed: serialises migrators from several processes on one PostgreSQL. */
const MIGRATION_LOCK = 0x6e_73_68_66;

interface Migration {
  id: number;
  name: string;
  sql: string;
}

export async function listMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (name) => ({
      id: Number(name.slice(0, 4)),
      name,
      sql: await readFile(`${MIGRATIONS_DIR}${name}`, "utf8"),
    })),
  );
}

/**
 * Applies every migration not yet recorded, each in its own transaction under an advisory lock, so
 * two processes starting at once cannot apply one twice. Returns the names applied.
 */
export async function migrate(db: Kysely<Database>): Promise<string[]> {
  await sql`create table if not exists nightshift_migrations (
    id integer primary key,
    name text not null,
    applied_at timestamptz not null default now()
  )`.execute(db);
  const applied: string[] = [];
  for (const migration of await listMigrations()) {
    const ran = await db.transaction().execute(async (tx) => {
      await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`.execute(tx);
      const done = await sql<{ id: number }>`
        select id from nightshift_migrations where id = ${migration.id}`.execute(tx);
      if (done.rows.length > 0) return false;
      await sql.raw(migration.sql).execute(tx);
      await sql`insert into nightshift_migrations (id, name) values (${migration.id}, ${migration.name})`.execute(
        tx,
      );
      return true;
    });
    if (ran) applied.push(migration.name);
  }
  return applied;
}
