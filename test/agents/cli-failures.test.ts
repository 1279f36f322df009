import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgentCommand,
  type AgentEvent,
  type AgentResult,
  type AgentSpawner,
  claudeCodeDriver,
  codexDriver,
  createDriver,
  GeminiCliDriver,
  localSpawner,
  locateCli,
} from "../../src/agents/index.ts";
import { isNightshiftError } from "../../src/errors/index.ts";

// A fake agent CLI: answers --version like a real one, then misbehaves as FAKE_MODE says.
const FAKE = `#!/usr/bin/env node
const fs = require("node:fs");
const { spawn } = require("node:child_process");
if (process.argv.includes("--version")) {
  if (process.env.FAKE_BROKEN === "1" || fs.existsSync(__filename + ".broken")) {
    console.error("placeholder: the native binary was not installed");
    process.exit(1);
  }
  console.log("9.9.9 (fake)");
  process.exit(0);
}
const out = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
const init = () => out({ type: "system", subtype: "init", model: "sim-demo" });
const success = (text) =>
  out({ type: "result", subtype: "success", is_error: false, result: text,
        usage: { input_tokens: 10, output_tokens: 2 } });
switch (process.env.FAKE_MODE) {
  case "crash":
    init();
    process.stderr.write("panic: something broke in the agent\\n");
    process.exit(3);
  case "garbage":
    for (let i = 0; i < 15; i++) process.stdout.write("<<garbage " + i + ">>\\n");
    process.stdout.write(Buffer.from([0xff, 0xfe, 0x00, 0x1b, 0x5b, 0x0a]));
    process.stdout.write("[1, 2, 3]\\nnull\\n\\"a string\\"\\n");
    process.exit(0);
  case "mixed":
    init();
    process.stdout.write("Warning: something chatty on stdout\\n");
    out({ type: "assistant", message: "not an object" });
    out({ type: "user", message: { content: [{ type: "tool_result" }] } });
    out({ type: "assistant", message: { id: 5, content: [{ type: "tool_use", name: 7, input: 1 }, null, "x"] } });
    success("finished anyway");
    process.exit(0);
  case "hang": {
    init();
    const child = spawn("sleep", ["1000"], { stdio: "ignore" });
    fs.writeFileSync(process.env.FAKE_PIDS, JSON.stringify([process.pid, child.pid]));
    setInterval(() => {}, 1000);
    break;
  }
  case "signal":
    init();
    process.kill(process.pid, "SIGSEGV");
    setInterval(() => {}, 1000);
    break;
  case "success-exit-1":
    init();
    success("all good");
    process.exit(1);
  case "api-error":
    init();
    out({ type: "result", subtype: "success", is_error: true, result: "API Error: 403 budget exhausted" });
    process.exit(1);
  case "codex-loop":
    for (let i = 0; i < 50; i++)
      out({ type: "item.started", item: { id: "item_" + i, type: "command_execution", command: "echo" } });
    setInterval(() => {}, 1000);
    break;
  default:
    init();
    success("ok");
}
`;

let dir: string;
let fake: string;
let pidsFile: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-fake-cli-"));
  await mkdir(path.join(dir, "ws"));
  fake = path.join(dir, "fake-agent");
  await writeFile(fake, FAKE);
  await chmod(fake, 0o755);
  pidsFile = path.join(dir, "pids.json");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function runFake(
  mode: string,
  options: {
    wallTimeMs?: number;
    signal?: AbortSignal;
    driver?: "claude" | "codex";
    maxSteps?: number;
  } = {},
): Promise<{ result: AgentResult; events: AgentEvent[]; ms: number }> {
  const settings = {
    path: fake,
    homesDir: path.join(dir, "homes"),
    env: { FAKE_MODE: mode, FAKE_PIDS: pidsFile },
    killGraceMs: 500,
    ...(options.wallTimeMs ? { wallTimeMs: options.wallTimeMs } : {}),
  };
  const driver = options.driver === "codex" ? codexDriver(settings) : claudeCodeDriver(settings);
  const events: AgentEvent[] = [];
  const started = performance.now();
  const result = await driver.run(
    {
      prompt: "Do the thing.",
      workspacePath: path.join(dir, "ws"),
      model: "sim-demo",
      endpoint: { baseURL: "http://127.0.0.1:9/v1", apiKey: "nsk-test" },
      maxSteps: options.maxSteps ?? 10,
      maxTokens: 1_000_000,
      commandTimeoutMs: 10_000,
    },
    (event) => events.push(event),
    options.signal ?? new AbortController().signal,
  );
  return { result, events, ms: performance.now() - started };
}

const errors = (events: AgentEvent[]) =>
  events.flatMap((e) => (e.kind === "error" ? [e.message] : []));

/** Running, as opposed to gone or a zombie waiting for a (re)parent to reap it. */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return stat !== "" && state !== "Z" && state !== "X";
}

describe("a CLI agent that misbehaves ends its run with a clear reason", () => {
  it("crash: non-zero exit without a result, with the end of its stderr", async () => {
    const { result } = await runFake("crash");
    expect(result.reason).toBe("error");
    expect(result.summary).toBe(
      "Claude Code exited with code 3 without reporting how the run ended; stderr: panic: something broke in the agent",
    );
  });

  it("garbage: every non-JSON line is counted, none crashes the driver", async () => {
    const { result, events } = await runFake("garbage");
    expect(result.reason).toBe("error");
    expect(result.summary).toMatch(
      /^Claude Code exited normally without printing a single JSON event; 19 output line\(s\) were not JSON events \(first: not a JSON event: <<garbage 0>>\)$/,
    );
    const messages = errors(events);
    // Ten one by one, then the count, then the ending.
    expect(
      messages.slice(0, 10).every((m) => m.startsWith("claude-code printed not a JSON event")),
    ).toBe(true);
    expect(messages[10]).toBe("claude-code printed 19 lines that are not JSON events in all");
    expect(messages.at(-1)).toBe(result.summary);
  });

  it("garbage among good events: reported, and the run still ends as the CLI said", async () => {
    const { result, events } = await runFake("mixed");
    expect(result).toMatchObject({
      reason: "completed",
      summary: "finished anyway",
      inputTokens: 10,
      outputTokens: 2,
    });
    expect(errors(events)).toEqual([
      "claude-code printed not a JSON event: Warning: something chatty on stdout",
    ]);
    // Malformed shapes were read defensively: a tool call with a non-string name, a result without an id.
    expect(events.filter((e) => e.kind === "tool_call")).toEqual([
      { kind: "tool_call", callId: "", tool: "unknown", input: 1 },
    ]);
  });

  it("hang: killed at the wall-time limit, with everything it started", async () => {
    const { result, ms } = await runFake("hang", { wallTimeMs: 1_500 });
    expect(result.reason).toBe("aborted");
    expect(result.summary).toBe(
      "Claude Code was still running at the wall-time limit of 1500 ms and was killed",
    );
    // Long before the 1,000 s the fake would sleep (no tight bound: the host may be busy).
    expect(ms).toBeLessThan(120_000);
    const pids = JSON.parse(await readFile(pidsFile, "utf8")) as number[];
    await expect
      .poll(() => Promise.all(pids.map(alive)), { timeout: 60_000 })
      .toEqual([false, false]);
  });

  it("cancelled: the line's abort stops it at once", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 800);
    const { result, ms } = await runFake("hang", { signal: controller.signal, wallTimeMs: 60_000 });
    expect(result).toMatchObject({ reason: "aborted", summary: "the run was cancelled" });
    // Ended by the cancel, not by the wall-time limit.
    expect(ms).toBeLessThan(60_000);
  });

  it("killed by a signal", async () => {
    const { result } = await runFake("signal");
    expect(result.reason).toBe("error");
    expect(result.summary).toMatch(
      /^Claude Code was killed by SIGSEGV without reporting how the run ended/,
    );
  });

  it("reports success but exits non-zero", async () => {
    const { result } = await runFake("success-exit-1");
    expect(result).toMatchObject({
      reason: "error",
      summary: "Claude Code reported success but exited with code 1",
    });
  });

  it("an API failure reported as a 'success' with is_error", async () => {
    const { result } = await runFake("api-error");
    expect(result).toMatchObject({
      reason: "error",
      summary: "Claude Code failed: API Error: 403 budget exhausted",
    });
  });

  it("a prompt too long for one argument is refused with the reason, not a crash", async () => {
    const driver = claudeCodeDriver({ path: fake, homesDir: path.join(dir, "homes") });
    const result = await driver.run(
      {
        prompt: "x".repeat(200_000),
        workspacePath: path.join(dir, "ws"),
        model: "sim-demo",
        endpoint: { baseURL: "http://127.0.0.1:9/v1", apiKey: "k" },
        maxSteps: 1,
        maxTokens: 1,
        commandTimeoutMs: 1,
      },
      () => undefined,
      new AbortController().signal,
    );
    expect(result.reason).toBe("error");
    expect(result.summary).toMatch(
      /the prompt \(200000 bytes\) is too long for a command-line argument/,
    );
  });

  it("runs past max_steps without a limit of its own: stopped by the driver", async () => {
    const { result } = await runFake("codex-loop", { driver: "codex", maxSteps: 5 });
    expect(result).toMatchObject({
      reason: "max_steps",
      summary: "stopped after 5 model turns (the run's max_steps)",
    });
  });
});

describe("detection", () => {
  it("names the npm package to install when a CLI is missing", async () => {
    const error = await locateCli({
      driver: "nosuch",
      displayName: "No Such Agent",
      packageName: "nightshift-no-such-agent-cli",
      bin: "nightshift-no-such-agent-cli",
    }).catch((e: unknown) => e);
    expect(isNightshiftError(error)).toBe(true);
    expect(error).toMatchObject({
      code: "agent_cli_missing",
      message:
        'No Such Agent is not installed: no npm package nightshift-no-such-agent-cli and no "nightshift-no-such-agent-cli" command on PATH',
    });
    expect((error as { hint: string }).hint).toContain(
      "npm install -E --save-dev nightshift-no-such-agent-cli",
    );
  });

  it("a configured path that is not there fails the run with the fix, not the line", async () => {
    const driver = claudeCodeDriver({ path: path.join(dir, "no-such-claude") });
    await expect(driver.preflight()).rejects.toMatchObject({ code: "agent_cli_missing" });
    const events: AgentEvent[] = [];
    const result = await driver.run(
      {
        prompt: "x",
        workspacePath: path.join(dir, "ws"),
        model: "m",
        endpoint: { baseURL: "http://127.0.0.1:9/v1", apiKey: "k" },
        maxSteps: 1,
        maxTokens: 1,
        commandTimeoutMs: 1,
      },
      (e) => events.push(e),
      new AbortController().signal,
    );
    expect(result.reason).toBe("error");
    expect(result.summary).toMatch(/Claude Code is not at the configured path .*no-such-claude/);
    expect(result.summary).toContain("npm install -E --save-dev @anthropic-ai/claude-code");
  });

  it("a CLI that is there but does not start is reported as broken", async () => {
    const broken = path.join(dir, "broken-agent");
    await writeFile(broken, FAKE);
    await writeFile(`${broken}.broken`, "");
    await chmod(broken, 0o755);
    await expect(claudeCodeDriver({ path: broken }).preflight()).rejects.toMatchObject({
      code: "agent_cli_broken",
      message: expect.stringContaining("placeholder: the native binary was not installed"),
    });
  });

  it("finds the CLIs installed as devDependencies, with their versions", async () => {
    for (const name of ["claude-code", "codex", "gemini-cli"]) {
      const driver = createDriver(name);
      expect(driver.name).toBe(name);
      await expect(driver.preflight?.()).resolves.toMatchObject({
        source: "package",
        version: expect.stringMatching(/\d+\.\d+\.\d+/),
      });
    }
  });

  it("Gemini CLI, when missing, says which npm package to install; when there, it is found", async () => {
    const missing = new GeminiCliDriver({ path: path.join(dir, "no-such-gemini") });
    await expect(missing.preflight()).rejects.toMatchObject({
      code: "agent_cli_missing",
      hint: expect.stringContaining("npm install -E --save-dev @google/gemini-cli"),
    });
    await expect(new GeminiCliDriver({ path: fake }).preflight()).resolves.toMatchObject({
      version: "9.9.9 (fake)",
    });
  });

  it("an unknown driver name is a configuration error listing the choices", () => {
    expect(() => createDriver("cursor")).toThrow(/unknown agent driver "cursor"/);
  });
});

describe("the command line", () => {
  it("is built by the driver and started through the injectable spawner, with a scrubbed env", async () => {
    const seen: AgentCommand[] = [];
    const spawner: AgentSpawner = (command, control) => {
      seen.push(command);
      return localSpawner(command, control);
    };
    process.env.NIGHTSHIFT_TEST_HOST_SECRET = "do-not-leak";
    try {
      const driver = claudeCodeDriver({ path: fake, homesDir: path.join(dir, "homes"), spawner });
      const result = await driver.run(
        {
          prompt: "--looks-like-a-flag",
          workspacePath: path.join(dir, "ws"),
          model: "sim-demo",
          endpoint: { baseURL: "http://127.0.0.1:4999/v1", apiKey: "nsk-run7-secret" },
          maxSteps: 4,
          maxTokens: 1,
          commandTimeoutMs: 1,
        },
        () => undefined,
        new AbortController().signal,
      );
      expect(result.reason).toBe("completed");
    } finally {
      delete process.env.NIGHTSHIFT_TEST_HOST_SECRET;
    }
    const [command] = seen;
    expect(command?.file).toBe(fake);
    expect(command?.cwd).toBe(path.join(dir, "ws"));
    expect(command?.args.slice(-2)).toEqual(["--", "--looks-like-a-flag"]);
    expect(command?.args).toEqual(
      expect.arrayContaining(["--max-turns", "4", "--model", "sim-demo"]),
    );
    expect(command?.env).toMatchObject({
      ANTHROPIC_BASE_URL: "http://127.0.0.1:4999",
      ANTHROPIC_API_KEY: "nsk-run7-secret",
      DISABLE_TELEMETRY: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    });
    expect(command?.env.NIGHTSHIFT_TEST_HOST_SECRET).toBeUndefined();
    expect(command?.env.HOME?.startsWith(path.join(dir, "homes"))).toBe(true);
    expect(command?.writablePaths).toEqual([path.dirname(command?.env.HOME ?? "")]);
  });
});
