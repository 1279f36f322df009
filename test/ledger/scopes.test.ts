import { afterAll, describe, expect, it } from "vitest";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import { pathsOverlap, scopesCollide } from "../../src/ledger/scopes.ts";
import {
  dropSchema,
  freshLedgerEachTest,
  freshSchemaName,
  ledgerBackends,
  POSTGRES_URL,
} from "../support/ledgers.ts";

describe("pathsOverlap: may two scope paths name a common file?", () => {
  it.each([
    ["src/a.ts", "src/a.ts", true],
    ["./src/a.ts", "src//a.ts", true],
    ["src/", "src/a.ts", true],
    ["src", "src/lib/deep/x.ts", true],
    ["src/lib/", "src/libx/", false],
    ["src/router", "src/router.ts", false],
    ["src/a.ts", "test/a.ts", false],
    ["src/*.ts", "src/a.ts", true],
    ["src/*.ts", "src/a.md", false],
    ["src/*.ts", "src/lib/", false],
    ["src/**/*.ts", "src/lib/x.md", true],
    ["**/*.md", "docs/", true],
    ["src/{a,b}.ts", "src/b.ts", true],
    ["src/{a,b}.ts", "src/c.ts", false],
    ["src/*/index.ts", "src/lib/index.ts", true],
    ["src/*/index.ts", "test/lib/index.ts", false],
    ["src/*.ts", "src/?.ts", true],
    [".", "anything/at/all", true],
  ])("%s and %s: %s", (a, b, expected) => {
    expect(pathsOverlap(a, b)).toBe(expected);
    expect(pathsOverlap(b, a)).toBe(expected);
  });
});

describe("scopesCollide", () => {
  it("collides when any pair of paths overlaps", () => {
    expect(scopesCollide(["docs/", "src/a.ts"], ["src/"], "parallel")).toBe(true);
    expect(scopesCollide(["docs/"], ["src/", "test/"], "parallel")).toBe(false);
  });
  it("an empty scope collides with nothing, or with everything when unscoped orders are exclusive", () => {
    expect(scopesCollide([], ["src/"], "parallel")).toBe(false);
    expect(scopesCollide([], [], "parallel")).toBe(false);
    expect(scopesCollide([], ["src/"], "exclusive")).toBe(true);
    expect(scopesCollide(["src/"], [], "exclusive")).toBe(true);
  });
});

const claimAs = (workerId: string, unscoped: "parallel" | "exclusive" = "parallel") => ({
  workerId,
  leaseMs: 60_000,
  agent: "builtin",
  model: "sim",
  scopes: { unscoped },
});

describe.each(ledgerBackends)("scope-aware claims on $name", ({ location }) => {
  let ledger: Ledger;
  freshLedgerEachTest(location, (opened) => {
    ledger = opened;
  });

  it("holds back an order whose scope overlaps a running one's, and claims it once that ends", async () => {
    await ledger.addOrders([
      { title: "router", scope: ["src/router/"], priority: 3 },
      { title: "router test", scope: ["src/router/index.test.ts"], priority: 2 },
      { title: "docs", scope: ["docs/"], priority: 1 },
      { title: "anything" },
    ]);
    const first = await ledger.claimNext(claimAs("w"));
    const second = await ledger.claimNext(claimAs("w"));
    const third = await ledger.claimNext(claimAs("w"));
    expect([first?.order.title, second?.order.title, third?.order.title]).toEqual([
      "router",
      "docs",
      "anything",
    ]);
    expect(await ledger.claimNext(claimAs("w"))).toBeNull();
    await ledger.finishRun(first!.run.id, {
      outcome: "failed",
      runStatus: "failed",
      reason: "gave up",
    });
    expect((await ledger.claimNext(claimAs("w")))?.order.title).toBe("router test");
  });

  it("with unscoped orders exclusive, an order without a scope runs alone", async () => {
    await ledger.addOrders([
      { title: "anything", priority: 2 },
      { title: "docs", scope: ["docs/"], priority: 1 },
    ]);
    expect((await ledger.claimNext(claimAs("w", "exclusive")))?.order.title).toBe("anything");
    expect(await ledger.claimNext(claimAs("w", "exclusive"))).toBeNull();
    // Without the option, the claim ignores scopes as before.
    const plain = await ledger.claimNext({
      workerId: "w",
      leaseMs: 60_000,
      agent: "b",
      model: "m",
    });
    expect(plain?.order.title).toBe("docs");
  });
});

describe("scope-aware claims by workers racing on one PostgreSQL ledger", () => {
  const schema = freshSchemaName("scopes");
  const ledgers: Ledger[] = [];
  afterAll(async () => {
    await Promise.all(ledgers.map((l) => l.close()));
    await dropSchema(schema);
  });

  it("never run two colliding orders at once", async () => {
    for (let i = 0; i < 4; i++) {
      ledgers.push(await openLedger({ kind: "postgres", url: POSTGRES_URL, schema }, "test"));
    }
    const [first] = ledgers as [Ledger];
    // Ten orders on three areas: at most three can run at once, one per area.
    await first.addOrders(
      Array.from({ length: 10 }, (_, i) => ({
        title: `o${i}`,
        scope: [`area${i % 3}/`],
      })),
    );
    let claimed = 0;
    for (let round = 0; round < 10 && claimed < 10; round++) {
      const claims = await Promise.all(ledgers.map((l, w) => l.claimNext(claimAs(`w${w}`))));
      const running = await first.db
        .selectFrom("work_orders")
        .select("scope")
        .where("status", "=", "running")
        .execute();
      const areas = running.map((r) => r.scope[0]);
      expect(new Set(areas).size).toBe(areas.length);
      for (const claim of claims) {
        if (!claim) continue;
        claimed++;
        await first.finishRun(claim.run.id, {
          outcome: "failed",
          runStatus: "failed",
          reason: "x",
        });
      }
    }
    expect(claimed).toBe(10);
  });
});
