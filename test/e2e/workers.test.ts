import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { type Ledger, openLedger, type WorkOrder } from "../../src/ledger/index.ts";
import { demoOrders } from "../../src/sim/index.ts";
import { Workspaces } from "../../src/workspace/index.ts";
import { dropSchema, freshSchemaName, POSTGRES_URL } from "../support/ledgers.ts";
import { git, makeDemoRepo, testsPassAt } from "../support/line.ts";

/**
 * Several `nightshift worker` processes on one box standing in for several hosts: each works in
 * its own clone, they share one PostgreSQL ledger (a fresh schema of the test database) and one
 * bare git remote that main lives on. The shared PostgreSQL server is never restarted (others use
 * it): a lost connection is made by terminating this test's own backends.
 */
const BIN = fileURLToPath(new URL("../../bin/nightshift.js", import.meta.url));
const ORDERS = 4;

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function sharedFactory(hosts: number) {
  const demo = await makeDemoRepo({ concurrency: 2, brokenRate: 0.2, seed: 5 });
  cleanups.push(demo.cleanup);
  const schema = freshSchemaName("workers");
  cleanups.push(() => dropSchema(schema));
  const remote = path.join(demo.dir, ".nightshift", "remote.git");
  git(demo.dir, "init", "--quiet", "--bare", "-b", "main", remote);
  git(demo.dir, "push", "--quiet", remote, "main");
  const clones: string[] = [];
  for (let i = 0; i < hosts; i++) {
    const clone = path.join(demo.dir, ".nightshift", `host-${i}`);
    git(demo.dir, "clone", "--quiet", remote, clone);
    git(clone, "checkout", "--quiet", "--detach");
    await mkdir(path.join(clone, ".nightshift"), { recursive: true });
    // Each clone is the demo's repository, so the simulator plays its patches there too.
    await writeFile(path.join(clone, ".nightshift", "demo-repository"), "copied\n");
    const config = path.join(clone, "nightshift.toml");
    await writeFile(
      config,
      `${(await readFile(config, "utf8"))
        .replace("first_token_ms = 0", "first_token_ms = 150")
        .replace("lease_seconds = 60", "lease_seconds = 5")
        .replace(
          "poll_interval_ms = 2000",
          "poll_interval_ms = 250",
        )}\n[scale]\nremote = "origin"\ndrain_seconds = 600\n`,
    );
    clones.push(clone);
  }
  const env = {
    ...process.env,
    NIGHTSHIFT_DATABASE_URL: POSTGRES_URL,
    NIGHTSHIFT_DATABASE_SCHEMA: schema,
  };
  const ledger = await openLedger({ kind: "postgres", url: POSTGRES_URL, schema }, "test");
  cleanups.push(() => ledger.close());
  await ledger.addOrders(
    demoOrders.slice(0, ORDERS).map((o) => ({ title: o.title, spec: o.spec, maxAttempts: 6 })),
  );
  return { clones, remote, schema, env, ledger };
}

interface Worker {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function startWorker(dir: string, env: NodeJS.ProcessEnv, appName: string): Worker {
  const child = spawn(process.execPath, [BIN, "worker", "--dir", dir], {
    stdio: ["ignore", "pipe", "pipe"],
    // node-postgres names its connections after PGAPPNAME: how the test finds this worker's.
    env: { ...env, PGAPPNAME: appName },
  });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exit;
    }
  });
  return { child, output: () => output, exit };
}

/**
 * Waits for `check` while `alive` workers live. A safety net for a wedged process, not a speed
 * check: a busy machine needs minutes.
 */
async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  alive: Worker[],
  log: () => string,
) {
  const deadline = Date.now() + 900_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    const dead = alive.find((w) => w.child.exitCode !== null || w.child.signalCode !== null);
    if (dead) throw new Error(`a worker exited before ${what}; output:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`never saw ${what}; output:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function allSettled(ledger: Ledger) {
  const orders = await ledger.listOrders();
  return orders.every((o) => o.status === "landed" || o.status === "failed") ? orders : undefined;
}

async function terminateBackends(appName: string): Promise<number> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const result = await client.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1",
      [appName],
    );
    return result.rowCount ?? 0;
  } finally {
    await client.end();
  }
}

/**
 * The factory's promises after any crash: every order ended landed or failed exactly once, main
 * moved once per landing, linear and green at every commit, and metering is intact.
 */
async function expectEveryOrderEndedOnceOnAGreenMain(
  ledger: Ledger,
  orders: WorkOrder[],
  remote: string,
  host: string,
) {
  // Every order ended landed or failed exactly once; main moved once per landing, linear.
  const landed = orders.filter((o) => o.status === "landed");
  expect(landed.length).toBeGreaterThan(0);
  const history = git(remote, "rev-list", "--first-parent", "main").split("\n");
  const trailers = history
    .map((c) => git(remote, "log", "-1", "--format=%(trailers:key=Work-Order,valueonly)", c))
    .filter(Boolean);
  expect(trailers.sort()).toEqual(landed.map((o) => `WO-${o.id}`).sort());
  expect(await ledger.listMerges()).toHaveLength(landed.length);
  for (const order of landed) expect(history).toContain(order.landed_commit);
  for (const order of orders) {
    const endings = (await ledger.listTransitions(order.id)).filter(
      (t) => t.entity === "order" && (t.to_status === "landed" || t.to_status === "failed"),
    );
    expect(endings).toHaveLength(1);
  }
  // Green at every commit of main.
  for (const commit of history) expect(testsPassAt(host, commit)).toBe(true);
  // Metering intact: each run's totals are the sum of its metered requests, and together they
  // are the ledger's totals (the pre-flight's requests belong to no run).
  const mismatched = await sql<{ id: number }>`
    select r.id from runs r
    left join (select run_id, sum(input_tokens) as input, sum(output_tokens) as output,
        sum(cost_usd) as cost from model_requests group by run_id) m on m.run_id = r.id
    where r.input_tokens <> coalesce(m.input, 0) or r.output_tokens <> coalesce(m.output, 0)
      or abs(r.cost_usd - coalesce(m.cost, 0)) > 1e-9`.execute(ledger.db);
  expect(mismatched.rows).toEqual([]);
  const metered = await sql<{ n: string; input: string }>`
    select count(*) as n, coalesce(sum(input_tokens), 0) as input
    from model_requests where run_id is not null`.execute(ledger.db);
  expect(Number(metered.rows[0]?.n)).toBeGreaterThan(0);
  expect(Number(metered.rows[0]?.input)).toBe((await ledger.totals()).inputTokens);
}

describe("workers on several hosts sharing PostgreSQL and a git remote", () => {
  it("survive a worker killed with -9 mid-run and a lost database connection; drain on SIGTERM", {
    timeout: 1_200_000,
  }, async () => {
    const { clones, remote, schema, env, ledger } = await sharedFactory(2);
    const [hostA, hostB] = clones as [string, string];
    const a = startWorker(hostA, env, `${schema}_a`);
    const b = startWorker(hostB, env, `${schema}_b`);

    // Worker A dies with -9 while it holds runs in flight.
    const held = await until(
      "worker A running an agent",
      async () => {
        const runs = await ledger.listRuns();
        const mine = runs.filter(
          (r) =>
            r.status === "running" &&
            r.phase === "agent" &&
            r.worker_id.endsWith(`:${a.child.pid}`),
        );
        return mine.length > 0 ? mine : undefined;
      },
      [a, b],
      () => a.output() + b.output(),
    );
    a.child.kill("SIGKILL");
    await a.exit;

    // Worker B loses its connections once mid-run, and carries on.
    await until(
      "worker B connected",
      async () => ((await terminateBackends(`${schema}_b`)) > 0 ? true : undefined),
      [b],
      b.output,
    );

    const orders = await until(
      "every order settled",
      () => allSettled(ledger),
      [b],
      () => b.output(),
    );
    // B took A's runs back: each ended, none is left running under the dead worker.
    const runs = await ledger.listRuns();
    for (const run of held) {
      expect(runs.find((r) => r.id === run.id)?.status).not.toBe("running");
    }
    expect(runs.filter((r) => r.status === "running")).toEqual([]);

    // Drain: B stops claiming, its runs are done, it exits 0 and says so in the roster.
    b.child.kill("SIGTERM");
    expect(await b.exit).toBe(0);
    expect(b.output()).toContain("SIGTERM: draining");
    expect(b.output()).toContain("worker stopped");
    const workers = await ledger.workers.list();
    expect(workers.find((w) => w.pid === b.child.pid)?.state).toBe("stopped");
    expect(workers.find((w) => w.pid === a.child.pid)?.state).toBe("working");

    await expectEveryOrderEndedOnceOnAGreenMain(ledger, orders, remote, hostB);

    // A restarted on its host: its recovery leaves no orphaned worktree behind.
    const again = startWorker(hostA, env, `${schema}_a2`);
    await until(
      "worker A back",
      async () => (/taking orders/.test(again.output()) ? true : undefined),
      [again],
      again.output,
    );
    again.child.kill("SIGTERM");
    expect(await again.exit).toBe(0);
    const workspaces = new Workspaces({
      repoPath: hostA,
      branch: "main",
      rootDir: path.join(hostA, ".nightshift", "worktrees"),
      remote: "origin",
    });
    const kept = (await workspaces.listKept()).length;
    const worktrees = git(hostA, "worktree", "list", "--porcelain")
      .split("\n")
      .filter((l) => l.startsWith("worktree "));
    expect(worktrees).toHaveLength(1 + kept);
    const runDirs = (await readdir(path.join(hostA, ".nightshift", "worktrees"))).filter((d) =>
      d.startsWith("run-"),
    );
    expect(runDirs).toHaveLength(kept);
    expect(
      execFileSync("git", ["ls-remote", remote, "refs/nightshift/candidates/*"], {
        encoding: "utf8",
      }),
    ).toBe("");
  });
  it("survive the merge leader killed with -9 mid-landing: another worker takes the lead and lands its candidate once", {
    timeout: 1_200_000,
  }, async () => {
    const { clones, remote, schema, env, ledger } = await sharedFactory(2);
    const [hostA, hostB] = clones as [string, string];
    const a = startWorker(hostA, env, `${schema}_a`);

    // A leads the merge queue only while it is landing a candidate: kill it then.
    const leading = await until(
      "worker A leading the merge queue",
      async () => {
        const leader = await ledger.workers.leader();
        return leader?.workerId.endsWith(`:${a.child.pid}`) ? leader : undefined;
      },
      [a],
      a.output,
    );
    a.child.kill("SIGKILL");
    await a.exit;
    const inQueue = (await ledger.listRuns()).filter(
      (r) => r.status === "running" && r.phase === "merging" && r.worker_id === leading.workerId,
    );

    expect(inQueue.length).toBeGreaterThan(0);

    const b = startWorker(hostB, env, `${schema}_b`);
    const orders = await until("every order settled", () => allSettled(ledger), [b], b.output);
    // B took the lead after A's lease ran out, and A's candidates in the queue were taken over
    // (adopted and landed, or found already on main), not lost.
    const runs = await ledger.listRuns();
    for (const run of inQueue) {
      expect(runs.find((r) => r.id === run.id)?.status).not.toBe("running");
      const order = orders.find((o) => o.id === run.order_id);
      expect(order?.status, `order of run ${run.id}, killed in the merge queue`).toBe("landed");
    }
    b.child.kill("SIGTERM");
    expect(await b.exit).toBe(0);

    await expectEveryOrderEndedOnceOnAGreenMain(ledger, orders, remote, hostB);
  });
});
