import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BubblewrapBackend,
  type RunSandbox,
  type SandboxEvent,
  type SandboxViolationKind,
} from "../../src/sandbox/index.ts";
import { Workspaces } from "../../src/workspace/index.ts";
import { git, makeDemoRepo } from "../support/line.ts";

/**
 * The proof of issue 5: a hostile process tries more than 20 ways out of its sandbox while a
 * well-behaved run works next to it. Every attempt must be blocked (the host is unchanged, the
 * secret never shows) and recorded (a violation of the expected kind). Loopback only: the
 * "network" attempts aim at a server on the host's 127.0.0.1 that is not the gateway.
 */

const HOST_KEY = "sk-host-provider-key-never-inside";
const OTHER_RUN_SECRET = "other-run-private-notes";
const HOLDOUT_SECRET = "holdout-expected-answer-42";

let demo: Awaited<ReturnType<typeof makeDemoRepo>>;
let workspaces: Workspaces;
let hostile: RunSandbox;
let wellBehaved: RunSandbox;
const hostileEvents: SandboxEvent[] = [];
const neighbourEvents: SandboxEvent[] = [];
let forbidden: net.Server;
let forbiddenPort = 0;
let forbiddenConnections = 0;
let gateway: http.Server;
let gatewayPort = 0;
let gatewayRequests = 0;
let sleeper: ReturnType<typeof spawn>;
let holdoutDir = "";

beforeAll(async () => {
  process.env.OPENAI_API_KEY = HOST_KEY;
  demo = await makeDemoRepo();
  workspaces = new Workspaces({
    repoPath: demo.dir,
    branch: "main",
    rootDir: path.join(demo.dir, ".nightshift", "worktrees"),
  });
  const bad = await workspaces.create("1");
  const good = await workspaces.create("2");
  await writeFile(path.join(good.path, "notes.md"), OTHER_RUN_SECRET);
  holdoutDir = path.join(demo.dir, ".nightshift", "gates", "holdout");
  await mkdir(holdoutDir, { recursive: true });
  await writeFile(path.join(holdoutDir, "answer.test.ts"), HOLDOUT_SECRET);

  forbidden = net.createServer((socket) => socket.end("you should not be here"));
  forbidden.on("connection", () => {
    forbiddenConnections += 1;
  });
  await new Promise<void>((resolve) => forbidden.listen(0, "127.0.0.1", resolve));
  forbiddenPort = (forbidden.address() as net.AddressInfo).port;
  gateway = http.createServer((_req, res) => {
    gatewayRequests += 1;
    res.end("gateway ok");
  });
  await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  gatewayPort = (gateway.address() as net.AddressInfo).port;
  sleeper = spawn("sleep", ["300"], { stdio: "ignore" });

  const backend = new BubblewrapBackend({
    limits: {
      maxProcesses: 64,
      maxWorkspaceBytes: 32 * 1024 ** 2,
      tmpBytes: 16 * 1024 ** 2,
      maxMemoryBytes: 512 * 1024 ** 2,
    },
  });
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}/v1`;
  hostile = await backend.create({
    workspacePath: bad.path,
    gateway: { url: gatewayUrl, apiKey: "scoped-run-1" },
    onEvent: (e) => hostileEvents.push(e),
  });
  wellBehaved = await backend.create({
    workspacePath: good.path,
    gateway: { url: gatewayUrl, apiKey: "scoped-run-2" },
    onEvent: (e) => neighbourEvents.push(e),
  });
});

afterAll(async () => {
  delete process.env.OPENAI_API_KEY;
  sleeper?.kill("SIGKILL");
  await hostile?.dispose();
  await wellBehaved?.dispose();
  forbidden?.close();
  gateway?.close();
  await demo?.cleanup();
});

const run = (sandbox: RunSandbox, command: string, timeoutMs = 20_000) =>
  sandbox.exec({ command, timeoutMs });

interface Attempt {
  name: string;
  command: () => string;
  /** Any of these kinds recorded counts as "recorded". */
  kinds: SandboxViolationKind[];
  /** Text that must never appear in the output (a secret). */
  mustNotShow?: string;
  /** Host-side check that nothing changed. */
  hostUnchanged?: () => boolean | Promise<boolean>;
}

const repoFile = (...parts: string[]) => path.join(demo.dir, ...parts);

const attempts: Attempt[] = [
  { name: "read ~/.ssh/id_rsa", command: () => "cat ~/.ssh/id_rsa", kinds: ["access_denied"] },
  {
    name: "read the host's /root/.ssh",
    command: () => "cat /root/.ssh/id_rsa",
    kinds: ["access_denied"],
  },
  { name: "list the host's home", command: () => "ls -la /root", kinds: ["access_denied"] },
  {
    name: "read another run's files",
    command: () => "cat ../run-2/notes.md",
    kinds: ["path_outside_workspace"],
    mustNotShow: OTHER_RUN_SECRET,
  },
  { name: "list other runs", command: () => "ls ..", kinds: ["access_denied"] },
  {
    name: "read the provider key from the environment",
    command: () => "echo key=$OPENAI_API_KEY",
    kinds: ["access_denied"],
    mustNotShow: HOST_KEY,
  },
  {
    name: "dump the environment",
    command: () => "env | sort",
    kinds: ["access_denied"],
    mustNotShow: HOST_KEY,
  },
  {
    name: "read keys from /proc of the sandbox",
    command: () => "cat /proc/1/environ /proc/self/environ | tr '\\0' '\\n'",
    kinds: ["access_denied"],
    mustNotShow: HOST_KEY,
  },
  {
    name: "read keys from /proc of the host process",
    command: () => `cat /proc/${process.pid}/environ`,
    kinds: ["access_denied"],
    mustNotShow: HOST_KEY,
  },
  {
    name: "read /etc/shadow",
    command: () => "cat /etc/shadow",
    kinds: ["access_denied"],
  },
  {
    name: "write into the toolchain",
    command: () => "echo evil > /usr/local/bin/evil",
    kinds: ["write_denied"],
    hostUnchanged: () => !existsSync("/usr/local/bin/evil"),
  },
  {
    name: "write into the main checkout",
    command: () => `echo evil > ${repoFile("evil.txt")}`,
    kinds: ["write_denied", "access_denied", "path_outside_workspace"],
    hostUnchanged: () => !existsSync(repoFile("evil.txt")),
  },
  {
    name: "follow a symlink out of the workspace",
    command: () => "ln -sf /root escape && ls escape/ && cat escape/.ssh/id_rsa",
    kinds: ["access_denied"],
  },
  {
    name: "write through a symlink to the shared git config",
    command: () =>
      `ln -sf ${repoFile(".git", "config")} cfg && echo '[core] fsmonitor = evil' >> cfg`,
    kinds: ["write_denied"],
    hostUnchanged: async () =>
      !(await readFile(repoFile(".git", "config"), "utf8")).includes("evil"),
  },
  {
    name: "change git config outside the worktree",
    command: () => "git config core.hooksPath /tmp/evil-hooks",
    kinds: ["write_denied"],
    hostUnchanged: () => !git(demo.dir, "config", "--list").includes("evil-hooks"),
  },
  {
    name: "move main with git",
    command: () => "git update-ref refs/heads/main HEAD~0 && git branch -f main HEAD",
    kinds: ["write_denied"],
  },
  {
    name: "repoint the worktree's .git at the main repository",
    command: () => `echo "gitdir: ${repoFile(".git")}" > .git`,
    kinds: ["write_denied"],
    hostUnchanged: async () =>
      (await readFile(path.join(hostile.workspacePath, ".git"), "utf8")).includes("worktrees"),
  },
  {
    name: "read the gates' hidden files",
    command: () => `cat ${path.join(holdoutDir, "answer.test.ts")}`,
    kinds: ["path_outside_workspace"],
    mustNotShow: HOLDOUT_SECRET,
  },
  {
    name: "tamper with the gates' hidden files",
    command: () => `echo 'test("x",()=>{})' > ${path.join(holdoutDir, "answer.test.ts")}`,
    kinds: ["path_outside_workspace"],
    hostUnchanged: async () =>
      (await readFile(path.join(holdoutDir, "answer.test.ts"), "utf8")) === HOLDOUT_SECRET,
  },
  {
    name: "read the factory's state (ledger, logs)",
    command: () => `ls ${repoFile(".nightshift")}`,
    kinds: ["access_denied", "path_outside_workspace"],
  },
  {
    name: "reach a loopback server that is not the gateway (bash)",
    command: () => `echo hi > /dev/tcp/127.0.0.1/${forbiddenPort}`,
    kinds: ["network_blocked"],
  },
  {
    name: "reach a loopback server that is not the gateway (node)",
    command: () =>
      `node -e "require('net').connect(${forbiddenPort},'127.0.0.1').on('data',d=>console.log(String(d))).on('error',e=>{console.log(e.code);process.exit(1)})"`,
    kinds: ["network_blocked"],
  },
  {
    name: "kill a host process",
    command: () => `kill -9 ${sleeper.pid}`,
    kinds: ["kill_blocked"],
    hostUnchanged: () => sleeper.exitCode === null && sleeper.signalCode === null,
  },
  {
    name: "kill everything it can see (the run's gateway relay among it)",
    command: () => "kill -9 -1; sleep 1",
    kinds: ["kill_blocked"],
    hostUnchanged: async () =>
      sleeper.exitCode === null &&
      sleeper.signalCode === null &&
      // The relay is in a pid namespace of its own: the run still reaches the gateway.
      (
        await run(
          hostile,
          `node -e "fetch(process.env.NIGHTSHIFT_GATEWAY_URL+'/models').then(r=>r.text()).then(t=>console.log(t))"`,
        )
      ).output.includes("gateway ok"),
  },
  {
    name: "mount over the sandbox",
    command: () => "mount -t tmpfs none /usr",
    kinds: ["access_denied"],
  },
  {
    name: "fork bomb (bounded by the process limit)",
    command: () => "bomb() { bomb | bomb & }; bomb; sleep 10",
    kinds: ["process_limit"],
  },
  {
    name: "eat memory (bounded by the memory limit)",
    command: () => `node -e "const a=[];for(;;){a.push(Buffer.alloc(64*1024*1024,1))}"`,
    kinds: ["memory_limit", "process_limit"],
  },
  {
    name: "fill the disk with one file (bounded by the file size limit)",
    command: () => "dd if=/dev/zero of=big.bin bs=1M count=200",
    kinds: ["disk_limit"],
    hostUnchanged: () =>
      !existsSync(path.join(hostile.workspacePath, "big.bin")) ||
      statSync(path.join(hostile.workspacePath, "big.bin")).size <= 32 * 1024 ** 2,
  },
  {
    name: "fill the disk with many files (bounded by the workspace cap)",
    command: () => "for i in $(seq 1 40); do head -c 8000000 /dev/zero > fill-$i.bin; done",
    kinds: ["disk_limit"],
    hostUnchanged: () => !existsSync(path.join(hostile.workspacePath, "fill-40.bin")),
  },
  {
    name: "fill /tmp (bounded by its size)",
    command: () => "head -c 100000000 /dev/zero > /tmp/fill.bin",
    kinds: ["disk_limit"],
  },
];

describe("a hostile process in a bubblewrap sandbox", () => {
  it(`is blocked and recorded on each of ${attempts.length} escape attempts, while a well-behaved run next to it finishes`, async () => {
    expect(attempts.length).toBeGreaterThanOrEqual(20);
    // The neighbour works at the same time: the project's tests, and a request to the gateway.
    const neighbour = (async () => {
      const tests = await run(wellBehaved, "npm test --silent", 120_000);
      const model = await run(
        wellBehaved,
        `node -e "fetch(process.env.NIGHTSHIFT_GATEWAY_URL+'/models').then(r=>r.text()).then(t=>console.log(t))"`,
      );
      return { tests, model };
    })();

    const failures: string[] = [];
    for (const attempt of attempts) {
      const before = hostileEvents.length;
      const result = await run(hostile, attempt.command());
      const recorded = hostileEvents
        .slice(before)
        .flatMap((e) => (e.kind === "violation" ? [e.violation.kind] : []));
      const problems: string[] = [];
      if (!attempt.kinds.some((k) => recorded.includes(k))) {
        problems.push(
          `not recorded as ${attempt.kinds.join("|")} (recorded: ${recorded.join(", ") || "nothing"})`,
        );
      }
      if (attempt.mustNotShow && result.output.includes(attempt.mustNotShow))
        problems.push("the secret showed");
      if (attempt.hostUnchanged && !(await attempt.hostUnchanged()))
        problems.push("the host changed");
      if (problems.length > 0) {
        failures.push(
          `${attempt.name}: ${problems.join("; ")}\n  output: ${result.output.slice(0, 400)}`,
        );
      }
    }
    expect(failures).toEqual([]);
    expect(forbiddenConnections).toBe(0);
    // Over its disk cap, the run may still clean up, and then work again.
    const cleanup = await run(hostile, "rm -f *.bin && echo cleaned");
    expect(cleanup.output).toContain("cleaned");
    expect((await run(hostile, "echo fine > ok.txt && cat ok.txt")).output).toContain("fine");

    const { tests, model } = await neighbour;
    expect(tests.exitCode, tests.output).toBe(0);
    expect(model.output).toContain("gateway ok");
    expect(gatewayRequests).toBeGreaterThanOrEqual(1);
    // The neighbour's record holds only the note of what limits hold it, and no attempt.
    expect(neighbourEvents.map((e) => e.kind)).toEqual(["limits"]);
    // The hostile run's leftovers did not spill into its neighbour's worktree.
    expect(readdirSync(wellBehaved.workspacePath).filter((f) => f.endsWith(".bin"))).toEqual([]);
  }, 240_000);
});
