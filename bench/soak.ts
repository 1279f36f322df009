/**
 * Soak: `nightshift run --forever` on the demo repository, with the simulator's stochastic demo
 * policy (broken patches, give-ups, fixes on feedback), for SOAK_MINUTES (default 30). Not part of
 * the test suite. The demo orders go in through the inbox in waves; once a wave has settled, main
 * is checked green (the project's tests at main's tip, outside the line) and put back to the
 * initial tree by a commit, as a person pushing to main would, so the next wave has work. Prints
 * the landed changes, the main-green checks, the line's RSS and the state folder's size over time,
 * and the ledger's totals at the end. Retention caps are set low so that they are exercised.
 *
 *   npm run soak                      (30 minutes)
 *   SOAK_MINUTES=5 npm run soak
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createDemoRepository } from "../src/cli/commands/demo.ts";
import {
  type LedgerTotals,
  ledgerLocationFor,
  openLedger,
  type WorkOrder,
} from "../src/ledger/index.ts";
import { Inbox } from "../src/orders/index.ts";
import { demoOrders } from "../src/sim/index.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = path.join(ROOT, "bin", "nightshift.js");
const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
const SAMPLE_MS = 15_000;

const env = { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", NIGHTSHIFT_DATABASE_URL: "" };

function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    "git",
    ["-c", "user.name=soak", "-c", "user.email=soak@nightshift.invalid", ...args],
    { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  ).trim();
}

function rssMb(pid: number): number {
  try {
    const status = execFileSync("cat", [`/proc/${pid}/status`], { encoding: "utf8" });
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return 0;
  }
}

function diskMb(dir: string): number {
  // Files the line renames or removes meanwhile make du complain; its total still stands.
  try {
    const out = execFileSync("du", ["-sm", dir], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return Number(out.split(/\s+/)[0]);
  } catch (error) {
    const out = String((error as { stdout?: unknown }).stdout ?? "");
    return Number(out.split(/\s+/)[0]) || 0;
  }
}

interface Snapshot {
  orders: WorkOrder[];
  totals: LedgerTotals;
  defects?: { kind: string }[];
  lineState?: { reason: string };
}

async function snapshot(stateDir: string): Promise<Snapshot | undefined> {
  try {
    return JSON.parse(await readFile(path.join(stateDir, "status.json"), "utf8")) as Snapshot;
  } catch {
    return undefined;
  }
}

/** Whether the project's tests pass at `commit`, in a worktree of its own. */
function testsPassAt(repo: string, commit: string, name: string): boolean {
  const dir = path.join(tmpdir(), `nightshift-soak-${name}-${process.pid}`);
  git(repo, "worktree", "add", "--detach", "--quiet", dir, commit);
  try {
    execFileSync("npm", ["test", "--silent"], { cwd: dir, env, stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    git(repo, "worktree", "remove", "--force", dir);
  }
}

interface ReportJson {
  runs: number;
  endedRuns: number;
  landedChanges: number;
  modelRequests: number;
  tokens: number;
  costUsd: number;
  yield: number | null;
  costPerLandedChangeUsd: number | null;
}

/**
 * `nightshift report --json` against the ledger's rows, counted and summed here row by row: the
 * report's figures must be exactly what the rows say. Returns the mismatches.
 */
async function reportMatchesLedger(repo: string, stateDir: string): Promise<string[]> {
  const out = execFileSync(process.execPath, [BIN, "report", "--json"], {
    cwd: repo,
    env,
    encoding: "utf8",
  });
  const report = JSON.parse(out) as ReportJson;
  const ledger = await openLedger(ledgerLocationFor(stateDir, env), "soak check");
  try {
    const runs = await ledger.db.selectFrom("runs").select(["status"]).execute();
    const merges = await ledger.db.selectFrom("merges").select(["id"]).execute();
    const orders = await ledger.db.selectFrom("work_orders").select(["status"]).execute();
    const requests = await ledger.db
      .selectFrom("model_requests")
      .select(["input_tokens", "output_tokens", "cost_usd"])
      .execute();
    const ended = runs.filter((r) => r.status !== "running").length;
    const tokens = requests.reduce(
      (n, r) => n + Number(r.input_tokens) + Number(r.output_tokens),
      0,
    );
    const cost = requests.reduce((n, r) => n + Number(r.cost_usd), 0);
    const landedOrders = orders.filter((o) => o.status === "landed").length;
    const expected: [string, number | null, number | null][] = [
      ["runs", report.runs, runs.length],
      ["ended runs", report.endedRuns, ended],
      ["landed changes (merges rows)", report.landedChanges, merges.length],
      ["landed changes (landed orders)", report.landedChanges, landedOrders],
      ["model requests", report.modelRequests, requests.length],
      ["tokens", report.tokens, tokens],
      ["cost USD", report.costUsd, cost],
      ["yield", report.yield, ended > 0 ? merges.length / ended : null],
      [
        "cost per landed change",
        report.costPerLandedChangeUsd,
        merges.length > 0 ? cost / merges.length : null,
      ],
    ];
    console.log(
      `report: ${report.runs} runs (${report.endedRuns} ended), ${report.landedChanges} landed, ${report.modelRequests} requests, ${report.tokens} tokens, $${report.costUsd.toFixed(4)}`,
    );
    return expected.flatMap(([what, reported, counted]) => {
      const same =
        reported === counted ||
        (reported !== null &&
          counted !== null &&
          Math.abs(reported - counted) <= 1e-9 * Math.max(1, Math.abs(counted)));
      return same ? [] : [`${what}: report ${reported}, ledger rows ${counted}`];
    });
  } finally {
    await ledger.close();
  }
}

/** Whether the project's tests pass at main's tip; then main goes back to the initial tree. */
function checkAndReset(repo: string, initial: string): boolean {
  const dir = path.join(tmpdir(), `nightshift-soak-main-${process.pid}`);
  const old = git(repo, "rev-parse", "main");
  git(repo, "worktree", "add", "--detach", "--quiet", dir, old);
  try {
    let green = true;
    try {
      execFileSync("npm", ["test", "--silent"], { cwd: dir, env, stdio: "ignore" });
    } catch {
      green = false;
    }
    git(dir, "read-tree", "-u", "--reset", initial);
    git(dir, "commit", "--quiet", "--allow-empty", "-m", "soak: back to the initial tree");
    git(repo, "update-ref", "refs/heads/main", git(dir, "rev-parse", "HEAD"), old);
    return green;
  } finally {
    git(repo, "worktree", "remove", "--force", dir);
  }
}

async function main(): Promise<void> {
  const repo = await mkdtemp(path.join(tmpdir(), "nightshift-soak-"));
  await createDemoRepository(repo, { concurrency: 2, seed: 7, brokenRate: 0.2, giveUpRate: 0.05 });
  const config = path.join(repo, "nightshift.toml");
  const caps = (await readFile(config, "utf8"))
    .replace("keep_transcripts = 500", "keep_transcripts = 20")
    .replace("max_log_mb = 50", "max_log_mb = 1")
    .replace("keep_logs = 5", "keep_logs = 2")
    .replace("check_minutes = 10", "check_minutes = 1")
    .replace("keep_failed = 10", "keep_failed = 5");
  await writeFile(config, caps);
  const stateDir = path.join(repo, ".nightshift");
  const initial = git(repo, "rev-parse", "main");
  console.log(`soak: ${MINUTES} min of \`nightshift run --forever\` in ${repo}`);

  const child: ChildProcess = spawn(process.execPath, [BIN, "run", "--forever"], {
    cwd: repo,
    env: { ...env, NIGHTSHIFT_LOG_LEVEL: "info" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  // Whatever ends the soak, the line it started ends with it.
  process.on("exit", () => child.kill("SIGINT"));
  const inbox = new Inbox(path.join(stateDir, "inbox"));
  const started = Date.now();
  const deadline = started + MINUTES * 60_000;
  const rss: number[] = [];
  let waves = 0;
  let landed = 0;
  let failed = 0;
  const greens: boolean[] = [];
  let expected = 0;
  let nextSample = 0;

  const wave = async () => {
    waves += 1;
    expected += demoOrders.length;
    await inbox.put(
      demoOrders.map((o) => ({ title: o.title, spec: o.spec, acceptance: o.acceptance })),
    );
  };
  await wave();
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const snap = await snapshot(stateDir);
    if (Date.now() >= nextSample) {
      nextSample = Date.now() + SAMPLE_MS;
      const mb = rssMb(child.pid ?? 0);
      rss.push(mb);
      const t = snap?.totals.orders;
      console.log(
        `t=${Math.round((Date.now() - started) / 1000)}s rss=${mb}MB state=${diskMb(stateDir)}MB waves=${waves} landed=${t?.landed ?? 0} failed=${t?.failed ?? 0} queued=${(t?.queued ?? 0) + (t?.running ?? 0)}${snap?.lineState ? ` PAUSED: ${snap.lineState.reason}` : ""}`,
      );
    }
    if (!snap) continue;
    const settled = snap.orders.filter((o) => ["landed", "failed", "cancelled"].includes(o.status));
    if (snap.orders.length < expected || settled.length < expected) continue;
    const waveLanded = snap.totals.orders.landed - landed;
    landed = snap.totals.orders.landed;
    failed = snap.totals.orders.failed;
    const green = checkAndReset(repo, initial);
    greens.push(green);
    console.log(`wave ${waves}: ${waveLanded} landed; main green before reset: ${green}`);
    await wave();
  }
  child.kill("SIGINT");
  await exited;
  const final = await snapshot(stateDir);
  const totals = final?.totals;
  const minutes = (Date.now() - started) / 60_000;
  console.log("");
  console.log(
    `soak over after ${minutes.toFixed(1)} min; ${waves} waves of ${demoOrders.length} orders`,
  );
  console.log(
    `landed ${totals?.orders.landed ?? landed} (${((totals?.orders.landed ?? landed) / minutes).toFixed(2)}/min), failed ${totals?.orders.failed ?? failed}, runs ${totals?.runs ?? 0}`,
  );
  console.log(
    greens.length > 0
      ? `main green at every wave's end: ${greens.every(Boolean)} (${greens.length} checks)`
      : "main green: no wave finished, not checked",
  );
  // Every commit main went through since the start (the line's landings, the soak's resets).
  const head = git(repo, "rev-parse", "main");
  const commits = git(repo, "rev-list", "--first-parent", "--reverse", `${initial}..${head}`)
    .split("\n")
    .filter(Boolean);
  const red = commits.filter((c, i) => !testsPassAt(repo, c, `commit-${i}`));
  const everyCommitGreen = red.length === 0;
  console.log(
    `main green at every commit: ${everyCommitGreen} (${commits.length} commits since the start, head ${head.slice(0, 10)})${red.length > 0 ? `; red: ${red.map((c) => c.slice(0, 10)).join(", ")}` : ""}`,
  );
  console.log(
    `tokens in ${totals?.inputTokens ?? 0} out ${totals?.outputTokens ?? 0}, simulated cost $${(totals?.costUsd ?? 0).toFixed(4)}`,
  );
  const kinds = new Map<string, number>();
  for (const d of final?.defects ?? []) kinds.set(d.kind, (kinds.get(d.kind) ?? 0) + 1);
  console.log(`open defects: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ") || "none"}`);
  const third = Math.max(1, Math.floor(rss.length / 3));
  const avg = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length));
  const middle = avg(rss.slice(third, -third).length > 0 ? rss.slice(third, -third) : rss);
  const last = avg(rss.slice(-third));
  // Flat: the last third within 10% (plus 20 MB of noise) of the middle third; the first third
  // holds start-up (the sandbox self-test, main's baseline check) and is left out.
  const memoryFlat = rss.length < 6 || last <= middle * 1.1 + 20;
  console.log(
    `RSS MB: first third avg ${avg(rss.slice(0, third))}, middle third avg ${middle}, last third avg ${last}, max ${Math.max(...rss)}; state folder ${diskMb(stateDir)} MB`,
  );
  console.log(
    `memory flat: ${memoryFlat}${rss.length < 6 ? ` (only ${rss.length} samples: too short to tell)` : ` (last third ${last} MB vs middle third ${middle} MB)`}`,
  );
  const mismatches = await reportMatchesLedger(repo, stateDir);
  console.log(
    `report matches the ledger's rows: ${mismatches.length === 0}${mismatches.map((m) => `\n  mismatch: ${m}`).join("")}`,
  );
  const ok = everyCommitGreen && greens.every(Boolean) && memoryFlat && mismatches.length === 0;
  console.log(`soak verdict: ${ok ? "PASS" : "FAIL"}`);
  process.exitCode = ok ? 0 : 1;
  if (!process.env.SOAK_KEEP) await rm(repo, { recursive: true, force: true });
  else console.log(`kept ${repo}`);
}

await main();
