import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
 * the host watches the disk. A command that joined the run's network holder, or one that stops its
 * own gateway relay first (hosts where commands cannot join), still hits every limit; a command
 * killed for the disk leaves the worktree as it was. The run's relay cannot be signalled from
 * inside, is restarted when it died, and leaves no process after dispose. Loopback only.
 */

const CAP = 16 * 1024 ** 2;
let dir: string;
let workspace: string;
let gateway: http.Server;
let relayed: RunSandbox;
let ownRelay: RunSandbox;
let plain: RunSandbox;
let gatewayUrl: string;
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
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/v1`;
  relayed = await backend.create({
    workspacePath: workspace,
    gateway: { url: gatewayUrl, apiKey: "limits" },
    onEvent: (event) => events.push(event),
  });
  ownRelay = await new BubblewrapBackend({
    limits: { maxProcesses: 32, maxMemoryBytes: 256 * 1024 ** 2, maxWorkspaceBytes: CAP },
    relay: "per-command",
  }).create({ workspacePath: workspace, gateway: { url: gatewayUrl, apiKey: "limits" } });
  plain = await backend.create({ workspacePath: workspace, onEvent: (e) => events.push(e) });
});

afterAll(async () => {
  await relayed?.dispose();
  await ownRelay?.dispose();
  await plain?.dispose();
  gateway?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Signals the relay a command started in its own sandbox (hosts where it cannot join the run's):
 * the only node process there when the command starts.
 */
const signalOwnRelay = (signal: "STOP" | "KILL") =>
  `for p in /proc/[0-9]*; do case "$(readlink $p/exe)" in *node) kill -${signal} \${p#/proc/};; esac; done`;

const askGateway = `node -e "fetch(process.env.NIGHTSHIFT_GATEWAY_URL+'/models').then(r=>r.text()).then(t=>console.log(t))"`;

/** Host pids of the run's network holder (its bwrap, pid 1 and relay), found by the relay's port. */
function holderPids(): number[] {
  const port = new URL(gatewayUrl).port;
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        return args.some((a) => a.endsWith("relay.mjs")) && args.includes(port);
      } catch {
        return false;
      }
    })
    .map(Number);
}

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
    "ends a $name that first stopped its own gateway relay, naming the limit",
    async ({ command, kind }) => {
      const result = await ownRelay.exec({
        command: `${signalOwnRelay("STOP")}; ${command}`,
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
    "ends a $name that joined the run's network holder, naming the limit",
    async ({ command, kind }) => {
      const result = await relayed.exec({ command, timeoutMs: 60_000 });
      expect(result.timedOut, result.output).toBe(false);
      expect(result.violations.map((v) => v.kind)).toContain(kind);
      expect(existsSync(join(workspace, "fill-1.bin"))).toBe(false);
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

  it("a command that kills its own relay loses the gateway and nothing else; its exit status is its own", async () => {
    const result = await ownRelay.exec({
      command: `${signalOwnRelay("KILL")}; ${askGateway} || echo NO-GATEWAY; exit 7`,
      timeoutMs: 60_000,
    });
    expect(result.output).toContain("NO-GATEWAY");
    expect(result.exitCode).toBe(7);
    expect((await ownRelay.exec({ command: askGateway, timeoutMs: 20_000 })).output).toBe(
      "gateway ok\n",
    );
  });

  it("a command cannot signal the run's relay: after kill -9 -1 the next command reaches the gateway", async () => {
    const before = holderPids();
    expect(before.length).toBeGreaterThan(0);
    const result = await relayed.exec({
      command: `kill -9 -1; ${signalOwnRelay("KILL")}; ${askGateway}`,
      timeoutMs: 20_000,
    });
    expect(result.output).toContain("gateway ok");
    expect(holderPids()).toEqual(before);
  });
});

describe("the run's network holder", () => {
  it("is restarted when it died, and leaves no process behind after dispose", async () => {
    const relayedPids = holderPids();
    const sandbox = await new BubblewrapBackend().create({
      workspacePath: workspace,
      gateway: { url: gatewayUrl, apiKey: "holder" },
    });
    const before = holderPids().filter((pid) => !relayedPids.includes(pid));
    expect(before.length).toBeGreaterThan(0);
    // Killed from the host (nothing inside can): the next command notices and gets a new one.
    for (const pid of before) process.kill(pid, "SIGKILL");
    const again = await sandbox.exec({ command: askGateway, timeoutMs: 20_000 });
    expect(again.output).toBe("gateway ok\n");
    const restarted = holderPids().filter((pid) => !relayedPids.includes(pid));
    expect(restarted.length).toBeGreaterThan(0);
    expect(restarted.some((pid) => before.includes(pid))).toBe(false);
    await sandbox.dispose();
    expect(holderPids().filter((pid) => !relayedPids.includes(pid))).toEqual([]);
  });
});

describe("a sandbox's limits", () => {
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
