import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import {
  dropSchema,
  freshLedgerEachTest,
  freshSchemaName,
  ledgerBackends,
  POSTGRES_URL,
} from "../support/ledgers.ts";

/** What a leader killed a while ago leaves behind: a lease that ran out. */
async function expireLeader(ledger: Ledger) {
  await sql`update merge_leader set lease_expires_at = now() - interval '1 second'`.execute(
    ledger.db,
  );
}

describe.each(ledgerBackends)("the worker roster on $name", ({ location }) => {
  let ledger: Ledger;
  freshLedgerEachTest(location, (opened) => {
    ledger = opened;
  });

  it("lists each worker with its host, pid, state, runs and heartbeat", async () => {
    await ledger.workers.register({ id: "a:1", host: "a", pid: 1, concurrency: 3 });
    await ledger.workers.register({ id: "b:2", host: "b", pid: 2, concurrency: 1 });
    await ledger.addOrders([{ title: "one" }, { title: "two" }]);
    await ledger.claimNext({ workerId: "a:1", leaseMs: 60_000, agent: "builtin", model: "sim" });
    await ledger.claimNext({ workerId: "a:1", leaseMs: 60_000, agent: "builtin", model: "sim" });
    await ledger.workers.setState("b:2", "draining");
    await sql`update workers set heartbeat_at = now() - interval '90 seconds' where id = 'b:2'`.execute(
      ledger.db,
    );
    await ledger.workers.beat("a:1");

    const workers = await ledger.workers.list();
    const a = workers.find((w) => w.id === "a:1");
    const b = workers.find((w) => w.id === "b:2");
    expect(a).toMatchObject({ host: "a", pid: 1, concurrency: 3, state: "working", runs: 2 });
    expect(b).toMatchObject({ host: "b", pid: 2, state: "draining", runs: 0 });
    expect(a?.silentSeconds).toBeLessThan(b?.silentSeconds ?? 0);

    await ledger.workers.setState("b:2", "stopped");
    const stopped = (await ledger.workers.list()).find((w) => w.id === "b:2");
    expect(stopped?.state).toBe("stopped");
    expect(stopped?.stopped_at).not.toBeNull();
    // A restart under the same id is working again.
    await ledger.workers.register({ id: "b:2", host: "b", pid: 2, concurrency: 1 });
    expect((await ledger.workers.list()).find((w) => w.id === "b:2")?.state).toBe("working");
  });

  it("has one merge leader at a time, renews it, and lets another take over once its lease ran out", async () => {
    expect(await ledger.workers.lead("a", 60_000)).toBe(true);
    expect(await ledger.workers.lead("b", 60_000)).toBe(false);
    expect(await ledger.workers.lead("a", 60_000)).toBe(true);
    expect((await ledger.workers.leader())?.workerId).toBe("a");

    await expireLeader(ledger);
    expect(await ledger.workers.leader()).toBeUndefined();
    expect(await ledger.workers.lead("b", 60_000)).toBe(true);
    // The old leader, back from a pause, does not win its lease back.
    expect(await ledger.workers.lead("a", 60_000)).toBe(false);

    await ledger.workers.resign("a"); // not the leader: changes nothing
    expect((await ledger.workers.leader())?.workerId).toBe("b");
    await ledger.workers.resign("b");
    expect(await ledger.workers.lead("a", 60_000)).toBe(true);
  });
});

describe("merge leaders racing on one PostgreSQL server", () => {
  const schema = freshSchemaName("leaders");
  const ledgers: Ledger[] = [];

  afterEach(async () => {
    for (const ledger of ledgers.splice(0)) await ledger.close();
    await dropSchema(schema);
  });

  it("never has two leaders, however many workers ask at once", async () => {
    for (let i = 0; i < 8; i++) {
      ledgers.push(await openLedger({ kind: "postgres", url: POSTGRES_URL, schema }, "test"));
    }
    for (let round = 0; round < 20; round++) {
      const won = await Promise.all(
        ledgers.map((ledger, i) => ledger.workers.lead(`worker-${i}`, 60_000)),
      );
      expect(won.filter(Boolean)).toHaveLength(1);
      const winner = won.indexOf(true);
      expect((await ledgers[0]?.workers.leader())?.workerId).toBe(`worker-${winner}`);
      // Half the rounds the leader dies (its lease runs out), half it steps down.
      if (round % 2 === 0) await expireLeader(ledgers[0] as Ledger);
      else await ledgers[winner]?.workers.resign(`worker-${winner}`);
    }
  });
});
