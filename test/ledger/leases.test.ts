import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import type { Ledger } from "../../src/ledger/index.ts";
import { freshLedgerEachTest, ledgerBackends } from "../support/ledgers.ts";

const claimAs = (workerId: string) => ({
  workerId,
  leaseMs: 60_000,
  agent: "builtin",
  model: "sim",
});

/** Back-dates the leases of `workerId`'s runs: what a worker killed a while ago leaves behind. */
async function expireLeasesOf(ledger: Ledger, workerId: string) {
  await sql`update runs set lease_expires_at = now() - interval '1 minute'
    where worker_id = ${workerId}`.execute(ledger.db);
}

/** Resolves on the next wake-up the ledger sends. */
function nextWakeup(ledger: Ledger) {
  let woken!: () => void;
  const wakeup = new Promise<void>((resolve) => {
    woken = resolve;
  });
  const subscribed = ledger.onWork(
    () => woken(),
    (error) => {
      throw error;
    },
  );
  return { subscribed, wakeup };
}

describe.each(ledgerBackends)("leases and wake-ups on $name", ({ location }) => {
  let ledger: Ledger;
  freshLedgerEachTest(location, (opened) => {
    ledger = opened;
  });

  it("finds other workers' runs whose lease ran out, not a live one's nor its own", async () => {
    await ledger.addOrders([{ title: "a" }, { title: "b" }, { title: "c" }]);
    const dead = await ledger.claimNext(claimAs("dead"));
    await ledger.claimNext(claimAs("live"));
    const mine = await ledger.claimNext(claimAs("me"));
    expect(await ledger.recovery.expiredLeases("me")).toEqual([]);

    await expireLeasesOf(ledger, "dead");
    await expireLeasesOf(ledger, "me");
    const expired = await ledger.recovery.expiredLeases("me");
    expect(expired.map((r) => [r.id, r.worker_id])).toEqual([[dead!.run.id, "dead"]]);

    const recovered = await ledger.recovery.recoverRuns({
      all: false,
      exceptWorker: "me",
      hasLanded: async () => false,
    });
    expect(recovered.map((r) => [r.run.id, r.outcome])).toEqual([[dead!.run.id, "requeued"]]);
    expect((await ledger.getRun(mine!.run.id))?.status).toBe("running");
    // Queued again without losing the attempt.
    const order = await ledger.getOrder(dead!.order.id);
    expect([order?.status, order?.attempts]).toEqual(["queued", 0]);
    expect(await ledger.recovery.expiredLeases("me")).toEqual([]);
  });

  it("lets many workers recover at once: each run is taken back exactly once", async () => {
    await ledger.addOrders(Array.from({ length: 6 }, (_, i) => ({ title: `order ${i}` })));
    const claims = [];
    for (let i = 0; i < 6; i++) claims.push(await ledger.claimNext(claimAs("dead")));
    // One run's commit already reached main: recorded as landed, once.
    await ledger.setRunFacts(claims[0]!.run.id, { merge_commit: "c".repeat(40) });
    await expireLeasesOf(ledger, "dead");

    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        ledger.recovery.recoverRuns({
          all: false,
          exceptWorker: `live-${i}`,
          hasLanded: async (commit) => commit === "c".repeat(40),
        }),
      ),
    );
    const outcomes = results.flat().map((r) => [r.run.id, r.outcome] as const);
    expect(outcomes.map(([id]) => id).sort((a, b) => a - b)).toEqual(claims.map((c) => c!.run.id));
    expect(outcomes.filter(([, o]) => o === "landed")).toEqual([[claims[0]!.run.id, "landed"]]);
    expect(await ledger.listMerges()).toHaveLength(1);
    const orders = await ledger.listOrders();
    expect(orders.map((o) => o.status)).toEqual(["landed", ...Array(5).fill("queued")]);
    // One transition per recovered run: nobody recorded a run twice.
    const runTransitions = (await ledger.listTransitions()).filter(
      (t) => t.entity === "run" && t.from_status === "running" && t.to_status !== "running",
    );
    expect(runTransitions).toHaveLength(6);
  });

  it("wakes a waiting worker when an order is added", async () => {
    const { subscribed, wakeup } = nextWakeup(ledger);
    const unsubscribe = await subscribed;
    try {
      await ledger.addOrders([{ title: "new work" }]);
      await wakeup;
    } finally {
      await unsubscribe();
    }
  });

  it("wakes a waiting worker when a run is taken back and its order queued again", async () => {
    await ledger.addOrders([{ title: "a" }]);
    await ledger.claimNext(claimAs("dead"));
    await expireLeasesOf(ledger, "dead");
    const { subscribed, wakeup } = nextWakeup(ledger);
    const unsubscribe = await subscribed;
    try {
      await ledger.recovery.recoverRuns({
        all: false,
        exceptWorker: "me",
        hasLanded: async () => false,
      });
      await wakeup;
    } finally {
      await unsubscribe();
    }
  });
});
