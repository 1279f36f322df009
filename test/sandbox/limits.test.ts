import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BubblewrapBackend,
  type RunSandbox,
  type SandboxEvent,
  type SandboxViolationKind,
} from "../../src/sandbox/index.ts";

/**
 * The limits hold whatever runs inside: the kernel enforces them on a cgroup the host made, and
 * the host watches the disk. A command that stops or kills the sandbox's only other process (the
 * gateway relay) first still hits every limit; a command killed for the disk leaves the
 * worktree as it was. Loopback only.
 */

const CAP = 16 * 1024 ** 2;
let dir: string;
let workspace: string;
let gateway: http.Server;
let relayed: RunSandbox;
let plain: RunSandbox;
const events: SandboxEvent[] = [];

const git = (...args: string[]) =>
  execFileSync("git", ["-C", workspace, ...args], { encoding: "utf8" });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nightshift-limits-"));
  workspace = join(dir, "workspace");
  execFileSync("git", ["init", "-q", "-b", "main", workspace]);
  writeFileSync(join(workspace, "README.md"), "# limits\n");
  git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", "README.md");
  git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "start");
  gateway = http.createServer((_req, res) => res.end("gateway ok"));
  await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  const backend = new BubblewrapBackend({
    limits: { maxProcesses: 32, maxMemoryBytes: 256 * 1024 ** 2, maxWorkspaceBytes: CAP },
  });
  relayed = await backend.create({
    workspacePath: workspace,
    gateway: {
      url: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/v1`,
      apiKey: "limits",
    },
    onEvent: (event) => events.push(event),
  });
  plain = await backend.create({ workspacePath: workspace, onEvent: (e) => events.push(e) });
});

afterAll(async () => {
  await relayed?.dispose();
  await plain?.dispose();
  gateway?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The command's shell is the relay's child: $PPID is the relay (bwrap's init without one). */
const signalRelay = (signal: "STOP" | "KILL") => `kill -${signal} $PPID`;

const HOSTILE: { name: string; command: string; kind: SandboxViolationKind }[] = [
  { name: "fork bomb", command: "bomb() { bomb | bomb & }; bomb; sleep 30", kind: "process_limit" },
  {
    name: "memory eater",
    command: `node -e "const a=[];for(;;){a.push(Buffer.alloc(32*1024*1024,1))}"; sleep 30`,
    kind: "memory_limit",
  },
  {
    name: "disk filler",
    command: "for i in $(seq 1 40); do head -c 1000000 /dev/zero > fill-$i.bin; done; sleep 30",
    kind: "disk_limit",
  },
  {
    name: "one huge file after trying to lift the file size limit",
    command:
      "ulimit -f unlimited; ulimit -H -f unlimited; dd if=/dev/zero of=big.bin bs=1M count=100; sleep 30",
    kind: "disk_limit",
  },
];

describe("limits set from outside the sandbox", () => {
  it("says which limits the kernel enforces here", () => {
    const note = events.find((e) => e.kind === "limits");
    expect(note?.kind === "limits" && note.note.enforced).toEqual(
      expect.arrayContaining(["processes", "memory", "file size"]),
    );
    expect(relayed.kernelProcessLimit).toBe(true);
  });

  it.each(HOSTILE)(
    "ends a $name that first stopped the gateway relay, naming the limit",
    async ({ command, kind }) => {
      const result = await relayed.exec({
        command: `${signalRelay("STOP")}; ${command}`,
        timeoutMs: 60_000,
      });
      expect(result.timedOut, result.output).toBe(false);
      expect(result.violations.map((v) => v.kind)).toContain(kind);
      expect(result.output).toContain("[nightshift sandbox:");
      expect(existsSync(join(workspace, "fill-1.bin"))).toBe(false);
      expect(existsSync(join(workspace, "big.bin"))).toBe(false);
    },
  );

  it.each(HOSTILE)(
    "ends a $name in a sandbox with no process of nightshift's inside",
    async ({ command, kind }) => {
      const result = await plain.exec({ command, timeoutMs: 60_000 });
      expect(result.timedOut, result.output).toBe(false);
      expect(result.violations.map((v) => v.kind)).toContain(kind);
    },
  );

  it("ends every process of the command when the gateway relay is killed, and records it", async () => {
    const result = await relayed.exec({
      command: `(sleep 0.3; ${signalRelay("KILL")}) & for i in $(seq 1 12); do head -c 1000000 /dev/zero > fill-$i.bin; done; sleep 30`,
      timeoutMs: 60_000,
    });
    expect(result.timedOut).toBe(false);
    expect(result.violations.map((v) => v.kind)).toContain("supervisor_killed");
  });

  it("cannot lift a limit from inside: no cgroup, no capability", async () => {
    const result = await plain.exec({
      command:
        "ls /sys/fs/cgroup 2>&1 | head -3; echo max > /sys/fs/cgroup/pids.max || echo REFUSED",
      timeoutMs: 20_000,
    });
    expect(result.output).toContain("REFUSED");
  });
});

describe("a command killed for the disk limit", () => {
  it("leaves the worktree as it was, and the next command can write", async () => {
    writeFileSync(join(workspace, "notes.txt"), "before\n");
    const status = git("status", "--porcelain");
    const result = await plain.exec({
      command:
        "echo appended >> notes.txt; echo changed >> README.md; mkdir -p out/deep; for i in $(seq 1 40); do head -c 1000000 /dev/zero > out/deep/$i.bin; done",
      timeoutMs: 60_000,
    });
    expect(result.violations.map((v) => v.kind)).toContain("disk_limit");
    expect(result.output).toContain("removed what the command added");
    expect(git("status", "--porcelain")).toBe(status);
    expect(readFileSync(join(workspace, "notes.txt"), "utf8")).toBe("before\n");
    expect(readFileSync(join(workspace, "README.md"), "utf8")).toBe("# limits\n");
    const next = await plain.exec({
      command: "echo fine > ok.txt && cat ok.txt",
      timeoutMs: 20_000,
    });
    expect(next.output).toBe("fine\n");
    expect(next.violations).toEqual([]);
    rmSync(join(workspace, "ok.txt"));
    rmSync(join(workspace, "notes.txt"));
  });
});
