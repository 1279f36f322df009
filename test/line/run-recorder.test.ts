import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Ledger } from "../../src/ledger/index.ts";
import { RunRecorder } from "../../src/line/run-recorder.ts";
import { freshSchemaName, openTestLedger, POSTGRES_URL } from "../support/ledgers.ts";

const claimOptions = { workerId: "w1", leaseMs: 60_000, agent: "builtin", model: "sim" };

describe("a run's event recorder", () => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  let schema: string;

  beforeEach(async () => {
    schema = freshSchemaName("recorder");
    ({ ledger, dispose } = await openTestLedger({ kind: "postgres", url: POSTGRES_URL, schema }));
  });
  afterEach(async () => {
    vi.useRealTimers();
    await dispose();
  });

  it("writes batched events in order on flush", async () => {
    await ledger.addOrders([{ title: "events" }]);
    const claim = await ledger.claimNext(claimOptions);
    const recorder = new RunRecorder(ledger, claim!.run.id);
    recorder.record({ kind: "message", text: "one" });
    recorder.record({ kind: "message", text: "two" });
    await recorder.flush();
    const events = await ledger.listEvents(claim!.run.id);
    expect(events.map((e) => (e.payload as { text: string }).text)).toEqual(["one", "two"]);
  });

  it("reports a timed write lost with the database connection on the next flush, never as an unhandled rejection", async () => {
    await ledger.addOrders([{ title: "lost" }]);
    const claim = await ledger.claimNext(claimOptions);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
      const recorder = new RunRecorder(ledger, claim!.run.id);
      await ledger.close();
      recorder.record({ kind: "message", text: "written after the connection went" });
      vi.runOnlyPendingTimers();
      await expect(recorder.flush()).rejects.toThrow();
      // Give a stray rejection its turn to surface before looking.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
