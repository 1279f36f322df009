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
import type { LedgerTotals, WorkOrder } from "../src/ledger/index.ts";
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
  const head = git(repo, "rev-parse", "main");
  let greenNow = true;
  const dir = path.join(tmpdir(), `nightshift-soak-final-${process.pid}`);
  git(repo, "worktree", "add", "--detach", "--quiet", dir, head);
  try {
    execFileSync("npm", ["test", "--silent"], { cwd: dir, env, stdio: "ignore" });
  } catch {
    greenNow = false;
  } finally {
    git(repo, "worktree", "remove", "--force", dir);
  }
  console.log(`main green at the end (${head.slice(0, 10)}): ${greenNow}`);
  console.log(
    `tokens in ${totals?.inputTokens ?? 0} out ${totals?.outputTokens ?? 0}, simulated cost $${(totals?.costUsd ?? 0).toFixed(4)}`,
  );
  const kinds = new Map<string, number>();
  for (const d of final?.defects ?? []) kinds.set(d.kind, (kinds.get(d.kind) ?? 0) + 1);
  console.log(`open defects: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ") || "none"}`);
  const third = Math.max(1, Math.floor(rss.length / 3));
  const avg = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length));
  console.log(
    `RSS MB: first third avg ${avg(rss.slice(0, third))}, last third avg ${avg(rss.slice(-third))}, max ${Math.max(...rss)}; state folder ${diskMb(stateDir)} MB`,
  );
  if (!process.env.SOAK_KEEP) await rm(repo, { recursive: true, force: true });
  else console.log(`kept ${repo}`);
}

await main();
