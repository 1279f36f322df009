import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/index.ts";
import { createCommandGate } from "../../src/gates/index.ts";
import {
  BubblewrapBackend,
  createSandboxBackend,
  SandboxError,
  type SandboxEvent,
  selfTestSandbox,
  spawnInSandbox,
  UNSANDBOXED_WARNING,
} from "../../src/sandbox/index.ts";

let dir: string;
let workspace: string;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "nightshift-bwrap-"));
  workspace = join(dir, "workspace");
  await mkdir(workspace);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const errorOf = async (promise: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    return error as SandboxError;
  }
  throw new Error("expected an error");
};

describe("the bubblewrap backend", () => {
  it("passes its self-test on this host, with a kernel cap on processes", async () => {
    const result = await selfTestSandbox(new BubblewrapBackend());
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result.checks.map((c) => c.name)).toContain("the kernel caps processes");
  });

  it("keeps runCommand's contract: cwd, exit code, interleaved output, timeout", async () => {
    const sandbox = await new BubblewrapBackend().create({ workspacePath: workspace });
    try {
      const ok = await sandbox.exec({
        command: "pwd; echo out; echo err >&2; exit 3",
        timeoutMs: 20_000,
      });
      expect(ok).toMatchObject({ exitCode: 3, signal: null, timedOut: false, aborted: false });
      expect(ok.output).toBe(`${workspace}\nout\nerr\n`);
      const slow = await sandbox.exec({ command: "sleep 30", timeoutMs: 500 });
      expect(slow.timedOut).toBe(true);
      expect(slow.output).toContain("timed out after 500 ms");
      expect(slow.violations.map((v) => v.kind)).toEqual(["timeout"]);
    } finally {
      await sandbox.dispose();
    }
  });

  it("shows the host's /etc files programs need, read-only and current, with the secrets as tripwires", async () => {
    const sandbox = await new BubblewrapBackend().create({ workspacePath: workspace });
    try {
      const result = await sandbox.exec({
        command:
          "cat /etc/passwd /etc/hosts; test -d /etc/ssl/certs && echo SSL; cat /etc/shadow; echo x >> /etc/passwd; ls /etc/ssh",
        timeoutMs: 20_000,
      });
      const host = readFileSync("/etc/passwd", "utf8") + readFileSync("/etc/hosts", "utf8");
      expect(result.output.startsWith(`${host}SSL\n`), result.output).toBe(true);
      expect(result.output).toContain("cat: /etc/shadow: Permission denied");
      expect(result.output).toContain("/etc/passwd: Read-only file system");
      expect(result.output).toContain("ls: cannot open directory '/etc/ssh': Permission denied");
      expect(result.violations.map((v) => v.kind).sort()).toEqual([
        "access_denied",
        "write_denied",
      ]);
    } finally {
      await sandbox.dispose();
    }
  });

  it("refuses a working directory outside the workspace", async () => {
    const sandbox = await new BubblewrapBackend().create({ workspacePath: workspace });
    try {
      const error = await errorOf(sandbox.exec({ command: "true", cwd: dir, timeoutMs: 5_000 }));
      expect(error).toBeInstanceOf(SandboxError);
      expect(error.code).toBe("invalid_sandbox_spec");
    } finally {
      await sandbox.dispose();
    }
  });

  it("refuses a gateway that is not on loopback, without contacting it", async () => {
    const error = await errorOf(
      new BubblewrapBackend().create({
        workspacePath: workspace,
        gateway: { url: "http://gateway.example:4000/v1", apiKey: "k" },
      }),
    );
    expect(error.code).toBe("invalid_sandbox_spec");
    expect(error.hint).toContain("127.0.0.1");
  });

  it("says how to install bubblewrap when it is missing", async () => {
    const path = process.env.PATH;
    process.env.PATH = join(dir, "empty");
    try {
      const error = await errorOf(() => new BubblewrapBackend());
      expect(error.code).toBe("backend_missing");
      expect(error.hint).toContain("apt-get install bubblewrap");
    } finally {
      process.env.PATH = path;
    }
    const gone = await errorOf(() => new BubblewrapBackend({ bwrapPath: join(dir, "no-bwrap") }));
    expect(gone.code).toBe("backend_missing");
  });

  it("runs gate commands sandboxed: hidden files readable by the gate, never writable", async () => {
    const hidden = join(dir, "holdout");
    await mkdir(hidden);
    writeFileSync(join(hidden, "answer.txt"), "42");
    const gate = createCommandGate({
      name: "holdout",
      command: `cat ${hidden}/answer.txt; echo tampered > ${hidden}/answer.txt; ls /root`,
      sandbox: new BubblewrapBackend(),
      hiddenPaths: [hidden],
    });
    const outcome = await gate.run({ workspacePath: workspace, commit: "0".repeat(40) });
    expect(outcome.output).toContain("42");
    expect(outcome.output).toContain("Read-only file system");
    expect(outcome.output).toContain("Permission denied");
    expect(readFileSync(join(hidden, "answer.txt"), "utf8")).toBe("42");
  });
});

describe("choosing a backend", () => {
  it("refuses backend none unless unsandboxed runs are allowed explicitly, and then warns on every run", async () => {
    const refused = await errorOf(() => createSandboxBackend({ backend: "none" }));
    expect(refused.code).toBe("invalid_sandbox_spec");
    expect(refused.hint).toContain("allow_unsandboxed = true");
    const events: SandboxEvent[] = [];
    const none = createSandboxBackend({ backend: "none", allowUnsandboxed: true });
    for (let run = 0; run < 2; run++) {
      const sandbox = await none.create({
        workspacePath: workspace,
        onEvent: (e) => events.push(e),
      });
      await sandbox.dispose();
    }
    expect(events).toEqual([
      { kind: "unsandboxed", message: UNSANDBOXED_WARNING },
      { kind: "unsandboxed", message: UNSANDBOXED_WARNING },
    ]);
  });

  it("rejects a config with backend none and no allow_unsandboxed", () => {
    const parsed = configSchema.safeParse({ sandbox: { backend: "none" } });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain("allow_unsandboxed");
    expect(
      configSchema.safeParse({ sandbox: { backend: "none", allow_unsandboxed: true } }).success,
    ).toBe(true);
    expect(configSchema.safeParse({ sandbox: { backend: "chroot" } }).success).toBe(false);
  });

  it("names the install command when no container engine is installed", async () => {
    const path = process.env.PATH;
    process.env.PATH = join(dir, "empty");
    try {
      const error = await errorOf(() => createSandboxBackend({ backend: "container" }));
      expect(error.code).toBe("backend_missing");
      expect(error.hint).toContain("apt-get install podman");
    } finally {
      process.env.PATH = path;
    }
  });
});

describe("spawnInSandbox (agent CLIs)", () => {
  it("streams a program's output from inside the sandbox, with its private home writable and the gateway reachable", async () => {
    const { createServer } = await import("node:http");
    const gateway = createServer((_req, res) => res.end("model says hi"));
    await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
    const port = (gateway.address() as { port: number }).port;
    const home = join(dir, "cli-home");
    await mkdir(home);
    const sandbox = await new BubblewrapBackend().create({
      workspacePath: workspace,
      gateway: { url: `http://127.0.0.1:${port}/v1`, apiKey: "scoped" },
    });
    const chunks: Buffer[] = [];
    try {
      const script = `require("fs").writeFileSync(process.env.HOME+"/session.json","{}");fetch(process.env.BASE_URL).then(r=>r.text()).then(t=>console.log(JSON.stringify({type:"result",text:t})))`;
      const ending = await spawnInSandbox(
        sandbox,
        {
          file: process.execPath,
          args: ["-e", script],
          env: { HOME: home, BASE_URL: `http://127.0.0.1:${port}/v1` },
          cwd: workspace,
          writablePaths: [home],
        },
        {
          timeoutMs: 20_000,
          killGraceMs: 500,
          signal: new AbortController().signal,
          onStdout: (chunk) => chunks.push(chunk),
        },
      );
      expect(ending).toMatchObject({ kind: "exited", exitCode: 0 });
      expect(Buffer.concat(chunks).toString()).toContain(
        '{"type":"result","text":"model says hi"}',
      );
      expect(readFileSync(join(home, "session.json"), "utf8")).toBe("{}");
      const missing = await spawnInSandbox(
        sandbox,
        { file: join(dir, "no-such-cli"), args: [], env: {}, cwd: workspace, writablePaths: [] },
        {
          timeoutMs: 5_000,
          killGraceMs: 500,
          signal: new AbortController().signal,
          onStdout: () => {},
        },
      );
      expect(missing).toMatchObject({ kind: "spawn_error" });
    } finally {
      await sandbox.dispose();
      gateway.close();
    }
  });
});
