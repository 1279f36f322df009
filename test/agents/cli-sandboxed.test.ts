import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgentEvent,
  type AgentResult,
  type AgentTask,
  claudeCodeDriver,
  codexDriver,
  endpointInside,
  installRoot,
} from "../../src/agents/index.ts";
import {
  BubblewrapBackend,
  type ExecOptions,
  type RunSandbox,
  type SandboxEvent,
} from "../../src/sandbox/index.ts";

// A fake agent CLI run inside a real bubblewrap sandbox by the CLI driver: it prints JSON events
// on stdout and chatter on stderr, asks the gateway (through the sandbox's relay), writes in its
// private home, and then behaves as FAKE_MODE says.
const FAKE = `#!/usr/bin/env node
const fs = require("node:fs");
const { spawn, execSync } = require("node:child_process");
if (process.argv.includes("--version")) { console.log("9.9.9 (fake)"); process.exit(0); }
const out = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
process.stderr.write("a chatty warning on stderr\\n");
out({ type: "system", subtype: "init", model: "sim-demo" });
const done = (text) => out({ type: "result", subtype: "success", is_error: false, result: text,
  usage: { input_tokens: 10, output_tokens: 2 } });
(async () => {
  switch (process.env.FAKE_MODE) {
    case "hang": {
      spawn("sleep", [process.env.FAKE_SLEEP], { stdio: "ignore" });
      setInterval(() => {}, 1000);
      break;
    }
    case "escape": {
      let output = "";
      try { execSync("echo escaped > " + process.env.FAKE_OUTSIDE, { stdio: "pipe" }); }
      catch (error) { output = String(error.stderr); }
      out({ type: "user", message: { content: [{ type: "tool_result", tool_use_id: "t1", content: output }] } });
      done("tried");
      break;
    }
    default: {
      fs.writeFileSync(process.env.HOME + "/session.json", "{}");
      const base = process.env.ANTHROPIC_BASE_URL;
      const answer = await fetch(base + "/v1/messages").then((r) => r.text());
      done(JSON.stringify({ answer, hostname: require("node:os").hostname(), home: fs.existsSync(process.env.HOME + "/session.json") }));
    }
  }
})();
`;

let dir: string;
let fake: string;
let ws: string;
let gateway: http.Server;
let gatewayUrl: string;
let backend: BubblewrapBackend;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-sandboxed-cli-"));
  ws = path.join(dir, "ws");
  await mkdir(ws);
  fake = path.join(dir, "bin", "fake-agent");
  await mkdir(path.dirname(fake));
  await writeFile(fake, FAKE);
  await chmod(fake, 0o755);
  gateway = http.createServer((_req, res) => res.end("gateway says hi"));
  await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/v1`;
  backend = new BubblewrapBackend();
});
afterAll(async () => {
  gateway.closeAllConnections();
  await new Promise((resolve) => gateway.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

async function runInSandbox(
  mode: string,
  options: { wallTimeMs?: number; signal?: AbortSignal; env?: Record<string, string> } = {},
): Promise<{
  result: AgentResult;
  events: AgentEvent[];
  sandboxEvents: SandboxEvent[];
  ms: number;
}> {
  const sandboxEvents: SandboxEvent[] = [];
  const sandbox = await backend.create({
    workspacePath: ws,
    gateway: { url: gatewayUrl, apiKey: "nsk-run" },
    // The note of which limits hold the sandbox comes on every run; the tests look at attempts.
    onEvent: (e) => {
      if (e.kind !== "limits") sandboxEvents.push(e);
    },
  });
  const driver = claudeCodeDriver({
    path: fake,
    homesDir: path.join(dir, "homes"),
    env: { FAKE_MODE: mode, ...options.env },
    killGraceMs: 500,
    ...(options.wallTimeMs ? { wallTimeMs: options.wallTimeMs } : {}),
  });
  const events: AgentEvent[] = [];
  const started = performance.now();
  try {
    const result = await driver.run(
      task({ sandbox }),
      (e) => events.push(e),
      options.signal ?? new AbortController().signal,
    );
    return { result, events, sandboxEvents, ms: performance.now() - started };
  } finally {
    await sandbox.dispose();
  }
}

function task(extra: Partial<AgentTask> = {}): AgentTask {
  return {
    prompt: "Do the thing; read ~/.ssh/id_rsa and run env | grep KEY if you must.",
    workspacePath: ws,
    model: "sim-demo",
    endpoint: { baseURL: gatewayUrl, apiKey: "nsk-run" },
    maxSteps: 10,
    maxTokens: 1_000_000,
    commandTimeoutMs: 10_000,
    ...extra,
  };
}

/** Host processes whose command line contains `marker` (the sandbox's are visible from here). */
function processesWith(marker: string): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("a CLI agent inside the run's bubblewrap sandbox", () => {
  it("runs inside (its own hostname), reaches the gateway through the relay, writes its private home, keeps stderr apart", async () => {
    const { result, events, sandboxEvents } = await runInSandbox("ok");
    expect(result.reason).toBe("completed");
    expect(JSON.parse(result.summary)).toEqual({
      answer: "gateway says hi",
      hostname: "nightshift-sandbox",
      home: true,
    });
    // stderr did not reach the JSON parser; the prompt's words were not taken for attempts.
    expect(events.filter((e) => e.kind === "error")).toEqual([]);
    expect(events.filter((e) => e.kind === "sandbox_warning")).toEqual([]);
    expect(sandboxEvents).toEqual([]);
  });

  it("a write outside the workspace by a command it runs is blocked and recorded", async () => {
    const outside = path.join(dir, "outside.txt");
    const { result, sandboxEvents } = await runInSandbox("escape", {
      env: { FAKE_OUTSIDE: outside },
    });
    expect(result.reason).toBe("completed");
    expect(existsSync(outside)).toBe(false);
    expect(sandboxEvents).toEqual([
      {
        kind: "violation",
        violation: {
          kind: "access_denied",
          detail: expect.stringContaining("outside.txt: Permission denied"),
          command: "claude (the claude-code agent)",
        },
      },
    ]);
  });

  it("the wall-time limit kills the agent and everything it started", async () => {
    const marker = "1000.123456";
    // Watched while the run lasts (not at a fixed moment: on a busy host the sandbox and the
    // agent take a while to start).
    let seenRunning = 0;
    const peek = setInterval(() => {
      seenRunning = Math.max(seenRunning, processesWith(marker).length);
    }, 50);
    const { result, ms, sandboxEvents } = await runInSandbox("hang", {
      wallTimeMs: 4_000,
      env: { FAKE_SLEEP: marker },
    });
    clearInterval(peek);
    expect(seenRunning).toBe(1);
    expect(result).toMatchObject({
      reason: "aborted",
      summary: "Claude Code was still running at the wall-time limit of 4 s and was killed",
    });
    // Long before the 1,000 s the agent would sleep (no tight bound: the host may be busy).
    expect(ms).toBeLessThan(120_000);
    expect(sandboxEvents.map((e) => e.kind === "violation" && e.violation.kind)).toEqual([
      "timeout",
    ]);
    await expect.poll(() => processesWith(marker), { timeout: 60_000 }).toEqual([]);
  });

  it("cancelling the run kills the agent and everything it started", async () => {
    const marker = "1000.654321";
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1_000);
    const { result, ms } = await runInSandbox("hang", {
      signal: controller.signal,
      wallTimeMs: 60_000,
      env: { FAKE_SLEEP: marker },
    });
    expect(result).toMatchObject({ reason: "aborted", summary: "the run was cancelled" });
    // Ended by the cancel, not by the wall-time limit.
    expect(ms).toBeLessThan(60_000);
    await expect.poll(() => processesWith(marker), { timeout: 60_000 }).toEqual([]);
  });
});

/** A sandbox that records what it is asked to run and runs nothing. */
function recordingSandbox(seen: ExecOptions[], gatewayEnv: Record<string, string>): RunSandbox {
  return {
    backend: "bubblewrap",
    workspacePath: ws,
    gatewayEnv,
    kernelProcessLimit: true,
    async exec(options) {
      seen.push(options);
      return {
        exitCode: 0,
        signal: null,
        output: "",
        timedOut: false,
        aborted: false,
        durationMs: 1,
        violations: [],
      };
    },
    async dispose() {},
  };
}

describe("the command a sandbox is given", () => {
  it("Codex runs with its own sandbox off inside ours (its bubblewrap cannot nest)", async () => {
    const seen: ExecOptions[] = [];
    const sandbox = recordingSandbox(seen, { NIGHTSHIFT_GATEWAY_URL: gatewayUrl });
    const driver = codexDriver({ path: fake, homesDir: path.join(dir, "homes") });
    await driver.run(task({ sandbox }), () => undefined, new AbortController().signal);
    const [exec] = seen;
    expect(exec?.command).toContain(" -s danger-full-access ");
    expect(exec?.scanCommandText).toBe(false);
    expect(exec?.label).toBe("codex (the codex agent)");
    expect(exec?.onStderr).toBeTypeOf("function");
    expect(exec?.writablePaths).toHaveLength(1);
    expect(exec?.writablePaths?.[0]?.startsWith(path.join(dir, "homes"))).toBe(true);
    expect(exec?.readOnlyPaths).toEqual([path.join(dir, "bin")]);
    // Unsandboxed, the configured mode (default: its own workspace-write sandbox) stands.
    const host = codexDriver({ path: fake, homesDir: path.join(dir, "homes"), spawner: seenBy() });
    await host.run(task(), () => undefined, new AbortController().signal);
    expect(lastArgs.join(" ")).toContain("-s workspace-write");
  });

  it("the model endpoint must be the gateway the sandbox relays to, on 127.0.0.1", () => {
    const port = new URL(gatewayUrl).port;
    const sandbox = recordingSandbox([], { NIGHTSHIFT_GATEWAY_URL: gatewayUrl });
    expect(endpointInside(task({ sandbox })).baseURL).toBe(gatewayUrl);
    expect(
      endpointInside(
        task({ sandbox, endpoint: { baseURL: `http://localhost:${port}/v1`, apiKey: "k" } }),
      ),
    ).toEqual({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "k" });
    expect(() =>
      endpointInside(
        task({ sandbox, endpoint: { baseURL: "http://127.0.0.1:1/v1", apiKey: "k" } }),
      ),
    ).toThrow(/not reachable from the run's sandbox, which relays only to/);
    expect(() => endpointInside(task({ sandbox: recordingSandbox([], {}) }))).toThrow(
      /no gateway relay/,
    );
    // Without a sandbox (or with backend "none") the endpoint is left as it is.
    const any = { baseURL: "http://localhost:1/v1", apiKey: "k" };
    expect(endpointInside(task({ endpoint: any }))).toBe(any);
  });

  it("a CLI's install root is the node_modules holding its package", () => {
    expect(installRoot("/r/node_modules/@openai/codex/bin/codex.js")).toBe("/r/node_modules");
    expect(installRoot("/r/node_modules/.cache/x/node_modules/opencode-ai/bin/opencode")).toBe(
      "/r/node_modules/.cache/x/node_modules",
    );
    expect(installRoot("/opt/tools/claude")).toBe("/opt/tools");
  });
});

let lastArgs: string[] = [];
function seenBy() {
  return async (command: { args: string[] }) => {
    lastArgs = command.args;
    return {
      kind: "exited" as const,
      exitCode: 0,
      signal: null,
      timedOut: false,
      aborted: false,
    };
  };
}
