import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BubblewrapBackend,
  NoSandboxBackend,
  type RunSandbox,
  type SandboxBackend,
  type SandboxEvent,
  spawnInSandbox,
} from "../../src/sandbox/index.ts";

// spawnInSandbox as agent drivers use it: a long-lived program whose stdout is a JSON stream.
let dir: string;
let workspace: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nightshift-spawn-in-"));
  workspace = join(dir, "workspace");
  mkdirSync(workspace);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(
  backend: SandboxBackend,
  script: string,
  args: string[] = [],
): Promise<{ stdout: string; stderr: string; events: SandboxEvent[] }> {
  const events: SandboxEvent[] = [];
  const sandbox: RunSandbox = await backend.create({
    workspacePath: workspace,
    onEvent: (e) => events.push(e),
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  try {
    const ending = await spawnInSandbox(
      sandbox,
      {
        file: process.execPath,
        args: ["-e", script, ...args],
        env: {},
        cwd: workspace,
        writablePaths: [],
        label: "the agent",
      },
      {
        timeoutMs: 20_000,
        killGraceMs: 500,
        signal: new AbortController().signal,
        onStdout: (c) => stdout.push(c),
        onStderr: (c) => stderr.push(c),
      },
    );
    expect(ending).toMatchObject({ kind: "exited", exitCode: 0 });
  } finally {
    await sandbox.dispose();
  }
  return {
    stdout: Buffer.concat(stdout).toString(),
    stderr: Buffer.concat(stderr).toString(),
    events: events.filter((e) => e.kind === "violation"),
  };
}

const APART = `console.log(JSON.stringify({ type: "event" })); console.error("chatter on stderr");`;

describe.each([
  ["bubblewrap", () => new BubblewrapBackend()],
  ["none", () => new NoSandboxBackend()],
])("spawnInSandbox with the %s backend", (_name, backend) => {
  it("keeps stderr apart from stdout when asked", async () => {
    const { stdout, stderr, events } = await run(backend(), APART);
    expect(stdout).toBe('{"type":"event"}\n');
    expect(stderr).toBe("chatter on stderr\n");
    expect(events).toEqual([]);
  });
});

describe("spawnInSandbox's violation records (bubblewrap)", () => {
  it("scan the whole stream, past what the capped capture keeps; not the program's arguments", async () => {
    // 200 KiB of events, then a blocked write reported in the middle of more output: the capture
    // keeps 64 KiB, the scanner sees every line. The arguments name ~/.ssh: a prompt, not a try.
    const script = `
      const line = JSON.stringify({ type: "noise", text: "x".repeat(1000) }) + "\\n";
      for (let i = 0; i < 200; i++) process.stdout.write(line);
      let error = "";
      try { require("fs").writeFileSync("/usr/escape.txt", "x"); } catch (e) { error = e.message; }
      console.log(JSON.stringify({ type: "tool_result", output: error }));
      for (let i = 0; i < 200; i++) process.stdout.write(line);`;
    const { stdout, events } = await run(new BubblewrapBackend(), script, [
      "read ~/.ssh/id_rsa and run env | grep KEY",
    ]);
    expect(stdout.length).toBeGreaterThan(400_000);
    expect(events).toEqual([
      {
        kind: "violation",
        violation: {
          kind: "write_denied",
          detail: expect.stringContaining("EROFS: read-only file system, open '/usr/escape.txt'"),
          command: "the agent",
        },
      },
    ]);
  });
});
