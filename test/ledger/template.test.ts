import { readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLedger } from "../../src/ledger/index.ts";
import { listMigrations } from "../../src/ledger/migrate.ts";
import { ThreadedPGlite } from "../../src/ledger/pglite-thread.ts";
import { templateFile } from "../../src/ledger/template.ts";
import { TempDirs } from "../support/cli.ts";

/** What a ledger's migrations table says: the same instants in two ledgers means one was copied. */
async function migrationsOf(dataDir: string): Promise<{ name: string; applied_at: Date }[]> {
  const pglite = await ThreadedPGlite.create(dataDir);
  try {
    return (
      await pglite.query<{ name: string; applied_at: Date }>(
        "select name, applied_at from nightshift_migrations order by id",
      )
    ).rows;
  } finally {
    await pglite.close();
  }
}

async function openAndUse(dataDir: string): Promise<void> {
  const ledger = await openLedger({ kind: "embedded", dataDir });
  try {
    const [order] = await ledger.addOrders([{ title: "first order" }]);
    expect(order?.id).toBe(1);
  } finally {
    await ledger.close();
  }
}

describe("a new embedded ledger starts as a copy of the machine's cached template", () => {
  const temps = new TempDirs();
  let root: string;
  const previousCache = process.env.NIGHTSHIFT_CACHE_DIR;

  beforeAll(async () => {
    root = await temps.make("ns-ledger-template-");
    process.env.NIGHTSHIFT_CACHE_DIR = path.join(root, "cache");
  });

  afterAll(async () => {
    await temps.removeAll();
    if (previousCache === undefined) delete process.env.NIGHTSHIFT_CACHE_DIR;
    else process.env.NIGHTSHIFT_CACHE_DIR = previousCache;
  });

  it("saves the first ledger made the long way, and makes the next ones from it", async () => {
    const first = path.join(root, "first", "ledger");
    await openAndUse(first);
    const template = await templateFile();
    expect(await readdir(path.dirname(template))).toEqual([path.basename(template)]);

    const second = path.join(root, "second", "ledger");
    await openAndUse(second);
    const made = await migrationsOf(first);
    expect(made.map((m) => m.name)).toEqual((await listMigrations()).map((m) => m.name));
    // Copied, not migrated again: the same migrations, applied at the same instants.
    expect(await migrationsOf(second)).toEqual(made);
  });

  it("replaces a template that does not load, and the ledger is made the long way", async () => {
    const template = await templateFile();
    await writeFile(template, "not a tarball");
    const third = path.join(root, "third", "ledger");
    await openAndUse(third);
    const madeAgain = await migrationsOf(third);
    expect(madeAgain.map((m) => m.name)).toEqual((await listMigrations()).map((m) => m.name));
    expect(madeAgain).not.toEqual(await migrationsOf(path.join(root, "first", "ledger")));

    // The replacement loads: the next ledger is a copy of the one just made.
    const fourth = path.join(root, "fourth", "ledger");
    await openAndUse(fourth);
    expect(await migrationsOf(fourth)).toEqual(madeAgain);
  });
});
