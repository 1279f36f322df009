import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CappedOutput,
  type CommandOptions,
  runCommand,
  SandboxError,
  scrubbedEnv,
} from "../../src/sandbox/index.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "nightshift-sandbox-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const run = (options: Partial<CommandOptions> & { command: string }) =>
  runCommand({ cwd: dir, timeoutMs: 60_000, ...options });

/** Alive means scheduled to run: a zombie waiting for a reaper no longer does anything. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

describe("runCommand", () => {
  it("runs in cwd with stdout and stderr interleaved", async () => {
    const result = await run({ command: "pwd; echo out; echo err >&2; echo out2" });
    expect(result).toMatchObject({ exitCode: 0, signal: null, timedOut: false, aborted: false });
    expect(result.output).toBe(`${dir}\nout\nerr\nout2\n`);
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("reports the command's exit code", async () => {
    const result = await run({ command: "echo 'not ok 1 - adds'; exit 3" });
    expect(result).toMatchObject({ exitCode: 3, timedOut: false, aborted: false });
    expect(result.output).toContain("not ok 1 - adds");
  });

  it("passes only the given env, not the host's secrets", async () => {
    process.env.NIGHTSHIFT_TEST_SECRET = "hunter2";
    try {
      const result = await run({
        command:
          'echo "secret=$NIGHTSHIFT_TEST_SECRET extra=$EXTRA ci=$CI"; command -v ls >/dev/null',
        env: { EXTRA: "yes" },
      });
      expect(result.output).toBe("secret= extra=yes ci=1\n");
      expect(result.exitCode).toBe(0);
    } finally {
      delete process.env.NIGHTSHIFT_TEST_SECRET;
    }
  });

  it("caps output keeping the head and the tail, with a marker between", async () => {
    const result = await run({
      command:
        "echo FIRST; for i in $(seq 1 20000); do echo line $i; done; echo 'AssertionError: LAST'; exit 1",
      maxOutputBytes: 4096,
    });
    expect(result.exitCode).toBe(1);
    expect(result.output.startsWith("FIRST\n")).toBe(true);
    expect(result.output).toContain("AssertionError: LAST\n");
    expect(result.output).toContain("line 19999\nline 20000\n");
    expect(result.output).toMatch(/\[\.\.\. nightshift: \d+ bytes of output omitted \.\.\.\]/);
    expect(result.output).not.toContain("line 5000\n");
    expect(Buffer.byteLength(result.output)).toBeLessThan(4096 + 200);
  });

  it("kills the whole process group on timeout and says so", async () => {
    const pidFile = join(dir, "child.pid");
    const started = Date.now();
    const result = await run({
      command: `sleep 100 & echo $! > ${pidFile}; echo started; wait`,
      timeoutMs: 500,
    });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(result).toMatchObject({ exitCode: null, timedOut: true, aborted: false });
    expect(result.output).toContain("started");
    expect(result.output).toContain("timed out after 500 ms");
    const child = Number(readFileSync(pidFile, "utf8"));
    expect(await waitUntil(() => !isAlive(child), 1_000)).toBe(true);
  });

  it("escalates to SIGKILL when the command ignores SIGTERM", async () => {
    const started = Date.now();
    const result = await run({
      command: "trap '' TERM; sleep 100",
      timeoutMs: 200,
      killGraceMs: 300,
    });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe("SIGKILL");
  });

  it("kills processes the command left running in the background", async () => {
    const pidFile = join(dir, "daemon.pid");
    const result = await run({
      command: `(sleep 100 >/dev/null 2>&1 &  echo $! > ${pidFile}); echo done`,
    });
    expect(result.exitCode).toBe(0);
    const daemon = Number(readFileSync(pidFile, "utf8"));
    expect(await waitUntil(() => !isAlive(daemon), 1_000)).toBe(true);
  });

  it("does not wait forever for a pipe held by a process that escaped the group", async () => {
    const started = Date.now();
    const result = await run({ command: "setsid sleep 3 & echo main" });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(result).toMatchObject({ exitCode: 0, output: "main\n" });
  });

  it("stops on abort, kills the processes and reports it in the result", async () => {
    const pidFile = join(dir, "child.pid");
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const result = await run({
      command: `sleep 100 & echo $! > ${pidFile}; wait`,
      signal: controller.signal,
    });
    expect(result).toMatchObject({ exitCode: null, aborted: true, timedOut: false });
    expect(result.output).toContain("aborted");
    const child = Number(readFileSync(pidFile, "utf8"));
    expect(await waitUntil(() => !isAlive(child), 1_000)).toBe(true);
  });

  it("does not start a command whose signal is already aborted", async () => {
    const marker = join(dir, "ran");
    const result = await run({ command: `touch ${marker}`, signal: AbortSignal.abort() });
    expect(result).toMatchObject({ exitCode: null, aborted: true, output: "" });
    expect(() => readFileSync(marker)).toThrow();
  });

  it("throws a typed error when the cwd is missing or bash cannot start", async () => {
    const missing = await run({ command: "true", cwd: join(dir, "gone") }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(SandboxError);
    expect((missing as SandboxError).code).toBe("command_could_not_start");
    const noBash = await run({ command: "true", env: { PATH: join(dir, "empty") } }).catch(
      (e: unknown) => e,
    );
    expect(noBash).toBeInstanceOf(SandboxError);
    expect((noBash as SandboxError).code).toBe("command_could_not_start");
    expect((noBash as SandboxError).message).toContain("could not start bash");
  });
});

describe("scrubbedEnv", () => {
  it("keeps the allow-list, adds CI and NO_COLOR, and layers extras on top", () => {
    process.env.NIGHTSHIFT_TEST_SECRET = "hunter2";
    try {
      const env = scrubbedEnv({ EXTRA: "yes", CI: "0" });
      expect(env).toMatchObject({ NO_COLOR: "1", CI: "0", EXTRA: "yes" });
      expect(env.PATH).toBe(process.env.PATH);
      expect(env.NIGHTSHIFT_TEST_SECRET).toBeUndefined();
      expect(scrubbedEnv().CI).toBe("1");
    } finally {
      delete process.env.NIGHTSHIFT_TEST_SECRET;
    }
  });
});

describe("CappedOutput", () => {
  it("keeps everything under the cap", () => {
    const out = new CappedOutput(100);
    out.write(Buffer.from("hello "));
    out.write(Buffer.from("world"));
    expect(out.toString()).toBe("hello world");
    expect(out.totalBytes).toBe(11);
  });

  it("keeps a quarter as head and three quarters as tail over the cap", () => {
    const out = new CappedOutput(40);
    for (let i = 0; i < 10; i++) out.write(Buffer.from(String(i).repeat(10)));
    expect(out.totalBytes).toBe(100);
    expect(out.toString()).toBe(
      `${"0".repeat(10)}\n[... nightshift: 60 bytes of output omitted ...]\n${"7".repeat(10)}${"8".repeat(10)}${"9".repeat(10)}`,
    );
  });
});
