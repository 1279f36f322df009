import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { listMigrations } from "./migrate.ts";

/**
 * A new PGlite ledger costs 3-5 s of CPU on a small machine before it holds anything: initdb, then
 * every migration. A copy of an empty, migrated one costs about a quarter of that. So the first
 * ledger made on a machine is saved (a gzipped tarball of its data directory) in the user's cache,
 * and every later new ledger, embedded or in memory, starts as a copy of it. The file's name holds
 * a hash of the migrations and the PGlite version: a ledger made from it is exactly what initdb and
 * the migrations would have made. A file that cannot be loaded is deleted and the ledger is made
 * the long way, so a bad cache costs time, never data.
 */

/** The cache folder: NIGHTSHIFT_CACHE_DIR, else $XDG_CACHE_HOME/nightshift, else ~/.cache/nightshift. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NIGHTSHIFT_CACHE_DIR) return env.NIGHTSHIFT_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(base, "nightshift");
}

let key: Promise<string> | undefined;

/** What makes two empty ledgers alike: the migrations' names and texts, and PGlite's version. */
function templateKey(): Promise<string> {
  key ??= listMigrations().then((migrations) => {
    const hash = createHash("sha256").update(pgliteVersion());
    for (const { name, sql } of migrations) hash.update(`\0${name}\0${sql}`);
    return hash.digest("hex").slice(0, 16);
  });
  return key;
}

function pgliteVersion(): string {
  // The package's exports do not include package.json: it is found beside the resolved entry.
  const entry = createRequire(import.meta.url).resolve("@electric-sql/pglite");
  const manifest = path.join(path.dirname(entry), "..", "package.json");
  return (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
}

/** Where the template for this version of the ledger lives (it may not exist yet). */
export async function templateFile(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return path.join(cacheDir(env), `ledger-template-${await templateKey()}.tar.gz`);
}

/** The cached template's path when there is one, else undefined. */
export async function cachedTemplate(
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const file = await templateFile(env);
  return existsSync(file) ? file : undefined;
}

/** The cached template's bytes when there is one, else undefined. */
export async function readTemplate(
  env: NodeJS.ProcessEnv = process.env,
): Promise<Blob | undefined> {
  const file = await cachedTemplate(env);
  if (!file) return undefined;
  try {
    return new Blob([await readFile(file)]);
  } catch {
    return undefined;
  }
}

/**
 * Saves a template, written under a temporary name and renamed, so that a reader never sees half a
 * file and two processes saving at once leave one whole one. A cache that cannot be written (a
 * read-only home) only means the next ledger is made the long way.
 */
export async function saveTemplate(
  dump: Blob | Uint8Array,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const file = await templateFile(env);
  const partial = `${file}.${process.pid}.${Date.now()}.partial`;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    const bytes = dump instanceof Blob ? new Uint8Array(await dump.arrayBuffer()) : dump;
    await writeFile(partial, bytes);
    await rename(partial, file);
  } catch {
    await rm(partial, { force: true });
  }
}

/** Forgets a template that failed to load. */
export async function dropTemplate(file: string): Promise<void> {
  await rm(file, { force: true });
}
