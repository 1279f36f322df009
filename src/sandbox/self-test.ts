import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { SandboxError } from "./errors.ts";
import type { SandboxBackend } from "./types.ts";

export interface SelfTestResult {
  backend: string;
  checks: { name: string; ok: boolean; detail: string }[];
  durationMs: number;
}

const probe = (port: number) =>
  `node -e "require('net').connect(${port},'127.0.0.1').on('connect',()=>console.log('CONNECTED')).on('data',d=>console.log('GOT '+d)).on('error',e=>console.log('BLOCKED '+e.code))"`;

/**
 * Proves, before the line starts, that the backend's walls hold on this host: a write outside
 * the workspace fails, a host file next to it is invisible, a loopback server that is not the
 * gateway cannot be reached while the gateway can, and a process flood is cut off. Throws
 * SandboxError("self_test_failed") naming every check that failed. Loopback only.
 */
export async function selfTestSandbox(backend: SandboxBackend): Promise<SelfTestResult> {
  const started = performance.now();
  const root = await mkdtemp(path.join(os.tmpdir(), "nightshift-selftest-"));
  const workspace = path.join(root, "workspace");
  await mkdir(workspace);
  const secret = path.join(root, "host-secret.txt");
  const secretText = `nightshift-canary-${process.pid}-${Date.now()}`;
  await writeFile(secret, secretText);
  const forbidden = await listen((socket) => socket.end("forbidden"));
  const gateway = await listen((socket) => socket.end("pong"));
  let forbiddenConnections = 0;
  forbidden.server.on("connection", () => {
    forbiddenConnections += 1;
  });
  const sandbox = await backend.create({
    workspacePath: workspace,
    gateway: { url: `http://127.0.0.1:${gateway.port}/v1`, apiKey: "self-test" },
    limits: { maxProcesses: 24 },
  });
  const checks: SelfTestResult["checks"] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  try {
    const outside = path.join(root, "written-from-inside");
    const walls = await sandbox.exec({
      command: [
        "echo inside > inside.txt",
        `echo escaped > ${outside} 2>/dev/null`,
        `cat ${secret} 2>&1 | head -c 200; echo`,
        probe(forbidden.port),
        probe(gateway.port),
      ].join("; "),
      timeoutMs: 20_000,
    });
    const out = walls.output;
    const inside = await readFile(path.join(workspace, "inside.txt"), "utf8").catch(() => "");
    check("workspace writable", inside === "inside\n", `inside.txt: ${JSON.stringify(inside)}`);
    const escaped = await access(outside).then(
      () => true,
      () => false,
    );
    check(
      "write outside the workspace fails",
      !escaped,
      escaped ? `${outside} was written` : "blocked",
    );
    check(
      "host files invisible",
      !out.includes(secretText),
      out.includes(secretText) ? "secret read" : "hidden",
    );
    check(
      "only the gateway is reachable",
      forbiddenConnections === 0 && !out.includes("GOT forbidden"),
      `non-gateway connections: ${forbiddenConnections}`,
    );
    check("the gateway is reachable", out.includes("GOT pong"), out.slice(-300));
    check(
      "the kernel caps processes",
      sandbox.kernelProcessLimit,
      sandbox.kernelProcessLimit
        ? "pids cgroup"
        : "no writable pids cgroup (v1 /sys/fs/cgroup/pids, or a delegated v2 group): a fork bomb could exhaust the host's pids",
    );
    const flood = await sandbox.exec({
      command: "for i in $(seq 1 60); do sleep 30 & done; wait",
      timeoutMs: 20_000,
    });
    check(
      "process limit enforced",
      flood.violations.some((v) => v.kind === "process_limit"),
      flood.output.slice(-300),
    );
  } finally {
    await sandbox.dispose();
    forbidden.server.close();
    gateway.server.close();
    await rm(root, { recursive: true, force: true });
  }
  const failed = checks.filter((c) => !c.ok);
  if (failed.length > 0) {
    throw new SandboxError(
      "self_test_failed",
      `the ${backend.name} sandbox does not isolate on this host: ${failed.map((c) => `${c.name} (${c.detail})`).join("; ")}`,
      "see docs/sandbox.md for the host requirements (user namespaces, bubblewrap 0.8+); nightshift will not start runs in a sandbox that leaks",
    );
  }
  return { backend: backend.name, checks, durationMs: Math.round(performance.now() - started) };
}

async function listen(onConnection: (socket: net.Socket) => void) {
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}
