import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import type { AgentDriver, AgentEvent, AgentResult } from "../../src/agents/index.ts";
import { bundledPrices, Gateway } from "../../src/gateway/index.ts";
import { type Ledger, openLedger } from "../../src/ledger/index.ts";
import type { ChatRequest } from "../../src/protocols/index.ts";
import { type Policy, type RunningSimulator, startSimulator } from "../../src/sim/index.ts";

/**
 * A loopback HTTP proxy that refuses everything and remembers what was asked. Agent CLIs get it
 * as HTTP(S)_PROXY (with the gateway in NO_PROXY), so any attempt to reach past the gateway
 * (telemetry, update checks, package downloads) is caught here and never leaves the machine.
 */
export class OutsideTrap {
  readonly attempts: string[] = [];
  private readonly server = http.createServer((req, res) => {
    this.attempts.push(`${req.method} ${req.url}`);
    res.statusCode = 403;
    res.end();
  });

  async start(): Promise<string> {
    this.server.on("connect", (req, socket) => {
      this.attempts.push(`CONNECT ${req.url}`);
      socket.on("error", () => undefined);
      socket.end("HTTP/1.1 403 Forbidden\r\n\r\n");
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  env(url: string): Record<string, string> {
    const noProxy = "127.0.0.1,localhost,::1";
    return {
      HTTP_PROXY: url,
      HTTPS_PROXY: url,
      http_proxy: url,
      https_proxy: url,
      NO_PROXY: noProxy,
      no_proxy: noProxy,
    };
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface AgentBench {
  ledger: Ledger;
  simulator: RunningSimulator;
  gateway: Gateway;
  trap: OutsideTrap;
  /** Env for drivers: the trap as proxy. */
  env: Record<string, string>;
  /** Every request the simulator's policy saw, in order. */
  requests: ChatRequest[];
  /** Folder for this bench's scratch files (workspaces, private homes). */
  scratch: string;
  close(): Promise<void>;
}

/** The part of a bench that runDriver, makeWorkspace and metering need (any upstream behind it). */
export type GatewayBench = Pick<AgentBench, "ledger" | "gateway" | "scratch">;

/** Ledger + simulator + gateway (all three protocols) + outside trap, as the line sets them up. */
export async function startAgentBench(policy: Policy): Promise<AgentBench> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), "nightshift-agents-"));
  const requests: ChatRequest[] = [];
  const ledger = await openLedger({ kind: "memory" });
  const simulator = await startSimulator({
    policy: (request, ctx) => {
      requests.push(request);
      return policy(request, ctx);
    },
  });
  const upstream = { baseURL: simulator.rootUrl, apiKey: "sim", auth: "bearer" as const };
  const gateway = new Gateway({
    ledger,
    logger: pino({ level: "silent" }),
    prices: bundledPrices,
    limits: {},
    upstreams: {
      "openai-chat": upstream,
      "anthropic-messages": upstream,
      "openai-responses": upstream,
      gemini: upstream,
    },
    retry: { attempts: 1 },
  });
  await gateway.listen();
  const trap = new OutsideTrap();
  const trapUrl = await trap.start();
  return {
    ledger,
    simulator,
    gateway,
    trap,
    env: trap.env(trapUrl),
    requests,
    scratch,
    async close() {
      await gateway.close();
      await simulator.close();
      await trap.close();
      await ledger.close();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** A small git repository to work in, like a run's worktree of main. */
export async function makeWorkspace(bench: GatewayBench): Promise<string> {
  const dir = path.join(bench.scratch, "workspace");
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "README.md"), "# Sample\n\nHello from the sample project.\n");
  await writeFile(path.join(dir, "package.json"), '{ "name": "sample", "private": true }\n');
  git(dir, "init", "--quiet", "--initial-branch=main");
  git(dir, "add", "-A");
  git(
    dir,
    "-c",
    "user.name=test",
    "-c",
    "user.email=test@example.invalid",
    "commit",
    "--quiet",
    "-m",
    "initial",
  );
  return dir;
}

export interface DriverRun {
  runId: number;
  result: AgentResult;
  events: AgentEvent[];
  /** What the gateway said when the run's key was closed: a budget refusal, the last model failure. */
  closed: Awaited<ReturnType<Gateway["closeRun"]>>;
}

/** One run of a driver in the workspace with a scoped key, then the key is closed and metered. */
export async function runDriver(
  bench: GatewayBench,
  driver: AgentDriver,
  task: { workspacePath: string; prompt: string; model?: string; maxSteps?: number },
  signal = new AbortController().signal,
): Promise<DriverRun> {
  const [order] = await bench.ledger.addOrders([{ title: "agent test" }]);
  const claim = await bench.ledger.claimNext({
    workerId: "test",
    leaseMs: 600_000,
    agent: driver.name,
    model: task.model ?? "sim-demo",
  });
  if (!claim || claim.order.id !== order?.id) throw new Error("could not claim the test order");
  const endpoint = await bench.gateway.openRun({ runId: claim.run.id, orderId: claim.order.id });
  const events: AgentEvent[] = [];
  let result: AgentResult;
  let closed: DriverRun["closed"];
  try {
    result = await driver.run(
      {
        prompt: task.prompt,
        workspacePath: task.workspacePath,
        model: task.model ?? "sim-demo",
        endpoint,
        maxSteps: task.maxSteps ?? 10,
        maxTokens: 10_000_000,
        commandTimeoutMs: 60_000,
      },
      (event) => events.push(event),
      signal,
    );
  } finally {
    closed = await bench.gateway.closeRun(claim.run.id);
  }
  return { runId: claim.run.id, result, events, closed };
}

/** The run's metering next to the simulator's own count of what it served. */
export async function metering(bench: GatewayBench, runId: number) {
  const rows = await bench.ledger.metering.listModelRequests(runId);
  return {
    rows,
    requests: rows.length,
    inputTokens: rows.reduce((sum, r) => sum + r.input_tokens, 0),
    outputTokens: rows.reduce((sum, r) => sum + r.output_tokens, 0),
  };
}

export function usageOf(events: AgentEvent[]) {
  let inputTokens = 0;
  let outputTokens = 0;
  for (const event of events) {
    if (event.kind !== "usage") continue;
    inputTokens += event.inputTokens;
    outputTokens += event.outputTokens;
  }
  return { inputTokens, outputTokens };
}

export function ofKind<K extends AgentEvent["kind"]>(events: AgentEvent[], kind: K) {
  return events.filter((e): e is Extract<AgentEvent, { kind: K }> => e.kind === kind);
}

/** Status of the workspace as `XY path` lines, sorted: what the candidate commit would contain. */
export function workspaceStatus(dir: string): string[] {
  return git(dir, "status", "--porcelain=v1", "--untracked-files=all")
    .split("\n")
    .filter(Boolean)
    .sort();
}
