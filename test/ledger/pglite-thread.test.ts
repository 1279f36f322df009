import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ThreadedPGlite } from "../../src/ledger/pglite-thread.ts";

describe("the embedded ledger's PGlite on a worker thread", () => {
  let dir: string;
  let db: ThreadedPGlite;

  // One data directory for the file (creating one runs initdb in WebAssembly: seconds); the last
  // test closes and reopens it.
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "ns-pglite-thread-"));
    db = await ThreadedPGlite.create(path.join(dir, "data"));
  });

  afterAll(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("returns parsed rows and keeps a PostgreSQL error's fields (the meter decides by its code)", async () => {
    await db.exec("create table t (id int primary key, at timestamptz, doc jsonb)");
    const at = new Date("2026-11-30T12:00:00Z");
    await db.query("insert into t values ($1, $2, $3)", [1, at, JSON.stringify({ a: [1] })]);
    const { rows } = await db.query<{ id: number; at: Date; doc: unknown }>("select * from t");
    expect(rows).toEqual([{ id: 1, at, doc: { a: [1] } }]);
    const duplicate = await db.query("insert into t (id) values (1)").catch((e: unknown) => e);
    expect(duplicate).toBeInstanceOf(Error);
    expect(duplicate).toMatchObject({ code: "23505", constraint: "t_pkey" });
    // The session is still usable after an error.
    expect((await db.query<{ n: number }>("select count(*)::int as n from t")).rows).toEqual([
      { n: 1 },
    ]);
  });

  it("forwards notifications to the main thread", async () => {
    await db.exec("listen wake");
    const heard = new Promise<[string, string]>((resolve) =>
      db.onNotification((channel, payload) => resolve([channel, payload])),
    );
    await db.exec("notify wake, 'now'");
    expect(await heard).toEqual(["wake", "now"]);
  });

  it("refuses a parameter it cannot send without leaving the statement pending", async () => {
    await expect(db.query("select $1::text", [() => 1])).rejects.toThrow();
    expect((await db.query<{ v: string }>("select $1::text as v", ["ok"])).rows).toEqual([
      { v: "ok" },
    ]);
  });

  it("keeps what was written across a close and a reopen", async () => {
    await db.exec("create table kept (v text); insert into kept values ('x')");
    await db.close();
    expect(db.closed).toBe(true);
    await expect(db.query("select 1")).rejects.toThrow(/closed/);
    db = await ThreadedPGlite.create(path.join(dir, "data"));
    expect((await db.query<{ v: string }>("select v from kept")).rows).toEqual([{ v: "x" }]);
  });
});
