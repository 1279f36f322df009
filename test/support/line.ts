import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import pino from "pino";
import { type AgentDriver, BuiltinAgent } from "../../src/agents/index.ts";
import { createDemoRepository } from "../../src/cli/commands/demo.ts";
import { createTestGate, type Gate } from "../../src/gates/index.ts";
import { type BudgetLimits, bundledPrices, Gateway } from "../../src/gateway/index.ts";
import type { Ledger, LedgerLocation } from "../../src/ledger/index.ts";
import {
  Line,
  type LineProgress,
  type LineSettings,
  type ModelAccess,
} from "../../src/line/index.ts";
import { type MergeQueue, SpeculativeMergeQueue } from "../../src/merge/index.ts";
import { BubblewrapBackend, type SandboxBackend } from "../../src/sandbox/index.ts";
import {
  type Policy,
  type RunningSimulator,
  sampleTestCommand,
  startSimulator,
} from "../../src/sim/index.ts";
import { Workspaces } from "../../src/workspace/index.ts";
import { openTestLedger } from "./ledgers.ts";

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

/** A fresh copy of the demo's sample repository in a temp folder. */
export async function makeDemoRepo(
  options: { brokenRate?: number; giveUpRate?: number; seed?: number; concurrency?: number } = {},
) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-test-"));
  await createDemoRepository(dir, {
    concurrency: options.concurrency ?? 2,
    seed: options.seed ?? 1,
    brokenRate: options.brokenRate ?? 0,
    giveUpRate: options.giveUpRate ?? 0,
  });
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface TestLine {
  line: Line;
  ledger: Ledger;
  workspaces: Workspaces;
  simulator: RunningSimulator;
  gateway: Gateway;
  progress: LineProgress[];
  close(): Promise<void>;
}

/** The real line (real git, agent, gates, simulator) over an in-memory ledger. */
export async function startTestLine(options: {
  repo: string;
  policy: Policy;
  settings?: Partial<LineSettings>;
  limits?: BudgetLimits;
  /** Default: bubblewrap, as in production; "unsandboxed" for a line without a backend. */
  sandbox?: SandboxBackend | "unsandboxed";
  sandboxDefectAfter?: number;
  /** Default: the speculative queue, as in production; "serial" for the one-at-a-time queue. */
  queue?: "speculative" | "serial";
  /** Instead of a merge queue: another output for gate-passed candidates (a pull request). */
  output?: MergeQueue;
  /** Gates instead of the test gate alone. */
  gates?: Gate[];
  /** Drivers by name, besides (or instead of) the built-in agent as "builtin". */
  drivers?: Record<string, AgentDriver>;
  /** What the line sees of the gateway, e.g. a wrapper that reports model failures. */
  models?: (gateway: Gateway) => ModelAccess;
  /** Default: an in-memory ledger of its own; a PostgreSQL location gets a fresh schema, dropped on close. */
  ledger?: LedgerLocation;
  /** Default "test-worker", the only worker (soleWorker); another id shares the ledger. */
  workerId?: string;
  soleWorker?: boolean;
  logger?: Logger;
}): Promise<TestLine> {
  const sandbox =
    options.sandbox === "unsandboxed" ? undefined : (options.sandbox ?? new BubblewrapBackend());
  const { ledger, dispose } = await openTestLedger(options.ledger ?? { kind: "memory" });
  const simulator = await startSimulator({ policy: options.policy });
  const gateway = new Gateway({
    ledger,
    logger: pino({ level: "silent" }),
    prices: bundledPrices,
    limits: options.limits ?? {},
    upstreams: {
      "openai-chat": { baseURL: simulator.url.replace(/\/v1$/, ""), apiKey: "sim", auth: "bearer" },
    },
  });
  await gateway.listen();
  const workspaces = new Workspaces({
    repoPath: options.repo,
    branch: "main",
    rootDir: path.join(options.repo, ".nightshift", "worktrees"),
  });
  const settings: LineSettings = {
    concurrency: 2,
    maxAttempts: 3,
    pollIntervalMs: 100,
    leaseMs: 60_000,
    driver: "builtin",
    model: "sim-demo",
    maxSteps: 12,
    maxTokensPerRun: 1_000_000,
    commandTimeoutMs: 60_000,
    testCommand: sampleTestCommand(),
    ...options.settings,
  };
  const gates = options.gates ?? [
    createTestGate({ command: settings.testCommand, timeoutMs: 120_000, sandbox }),
  ];
  const drivers: Record<string, AgentDriver> = { builtin: new BuiltinAgent(), ...options.drivers };
  const line = new Line(
    {
      ledger,
      workspaces,
      drivers: {
        get(name) {
          const driver = drivers[name];
          if (!driver) throw new Error(`no test driver "${name}"`);
          return driver;
        },
      },
      gates,
      ...(options.output
        ? { mergeQueue: options.output }
        : options.queue === "serial"
          ? {}
          : {
              mergeQueue: new SpeculativeMergeQueue(workspaces, gates, {
                maxBatch: 4,
                depth: 2,
                maxRounds: 12,
                scratchDir: path.join(options.repo, ".nightshift", "queue"),
              }),
            }),
      models: options.models ? options.models(gateway) : gateway,
      logger: options.logger ?? pino({ level: "silent" }),
      workerId: options.workerId ?? "test-worker",
      soleWorker: options.soleWorker ?? true,
      ...(sandbox ? { sandbox } : {}),
      ...(options.sandboxDefectAfter ? { sandboxDefectAfter: options.sandboxDefectAfter } : {}),
    },
    settings,
  );
  const progress: LineProgress[] = [];
  line.onProgress((p) => progress.push(p));
  return {
    line,
    ledger,
    workspaces,
    simulator,
    gateway,
    progress,
    async close() {
      await gateway.close();
      await simulator.close();
      await dispose();
    },
  };
}

/** Every commit on main, oldest first. */
export function mainHistory(repo: string): string[] {
  return git(repo, "rev-list", "--reverse", "main").split("\n");
}

/** The Work-Order trailers of main's commits, oldest first. */
export function landedOrderTrailers(repo: string): string[] {
  return git(repo, "log", "--reverse", "--format=%(trailers:key=Work-Order,valueonly)", "main")
    .split("\n")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Runs the project's tests at `commit` in a scratch worktree; true when they pass. */
export function testsPassAt(repo: string, commit: string): boolean {
  const dir = path.join(os.tmpdir(), `nightshift-check-${commit.slice(0, 12)}-${process.pid}`);
  git(repo, "worktree", "add", "--detach", "--quiet", dir, commit);
  try {
    execFileSync("/bin/sh", ["-c", sampleTestCommand()], { cwd: dir, stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    git(repo, "worktree", "remove", "--force", dir);
  }
}
