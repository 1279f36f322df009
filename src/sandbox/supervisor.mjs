// The sandbox's supervisor: the first program inside every sandbox (plain JavaScript, so the node
// that runs nightshift can start it with no loader). It is pid 2 of the sandbox's pid namespace and
// sees every process of the sandbox and only those. It:
//  1. relays 127.0.0.1:<gateway port> in the sandbox's own network namespace to the gateway's unix
//     socket bound in from the host: the only way out of the sandbox;
//  2. starts the command under `ulimit` (CPU seconds, file size, no core dumps);
//  3. watches the whole sandbox: process count, resident memory, disk use of the workspace; over a
//     limit it kills every process of the sandbox at once (kill -1 inside a pid namespace);
//  4. reports what it saw as JSON lines on fd 3 (the command cannot write there: fd 3 is not
//     passed on), and a note for the agent on stdout.
import { spawn } from "node:child_process";
import { closeSync, lstatSync, readdirSync, readFileSync, writeSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";

const config = JSON.parse(process.argv[2] ?? "{}");
const limits = config.limits;
const PAGE = 4096;
const LIMITS = 'ulimit -c 0; ulimit -t "$2"; ulimit -f "$3"; exec bash -c "$1"';
// stdout and stderr in one stream in write order, unless the host keeps them apart (an agent CLI
// whose stdout is a stream of JSON events); then stderr goes to the supervisor's own stderr.
const WRAPPER = config.separateStderr ? LIMITS : `exec 2>&1; ${LIMITS}`;

let child;
let stopping = false;

function report(entry) {
  try {
    writeSync(3, `${JSON.stringify(entry)}\n`);
  } catch {
    // The host stopped listening: nothing left to tell.
  }
}

function note(text) {
  try {
    writeSync(1, `\n[nightshift sandbox: ${text}]\n`);
  } catch {}
}

/** Over a limit: record it, tell the agent, and end every process of the sandbox but this one. */
function overLimit(limit, detail) {
  if (stopping) return;
  stopping = true;
  report({ kind: "limit", limit, detail });
  note(`${detail}; every process of the command was killed`);
  try {
    process.kill(-1, "SIGKILL");
  } catch {}
}

function pids() {
  return readdirSync("/proc").filter((name) => /^\d+$/.test(name));
}

function residentBytes(list) {
  let total = 0;
  for (const pid of list) {
    try {
      total += Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * PAGE;
    } catch {}
  }
  return total;
}

/** Bytes the workspace occupies; stops early once over `cap` (no need to count further). */
function diskUse(dir, cap) {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0 && total <= cap) {
    const current = stack.pop();
    let entries;
    try {
      entries = readdirSync(current);
    } catch {
      continue;
    }
    for (const name of entries) {
      const path = join(current, name);
      try {
        const info = lstatSync(path);
        total += info.blocks > 0 ? info.blocks * 512 : info.size;
        if (info.isDirectory()) stack.push(path);
      } catch {}
    }
  }
  return total;
}

const mib = (bytes) => `${Math.round(bytes / 1024 / 1024)} MiB`;

let lastWalkMs = 0;
// Over the cap already at the start (an earlier command filled it), a command may still run to
// clean up: only growth past the cap ends it.
let allowed = limits.maxWorkspaceBytes;

function checkDisk() {
  const started = Date.now();
  const used = diskUse(config.workspace, allowed + 1);
  lastWalkMs = Date.now() - started;
  if (used > allowed) {
    overLimit(
      "disk",
      `the workspace uses more than its ${mib(limits.maxWorkspaceBytes)} of disk; delete files to go on`,
    );
  }
}

function watch() {
  // Processes are counted often: a fork bomb doubles fast, and each tick it has to outrun is cheap.
  const fast = setInterval(() => {
    const list = pids();
    if (list.length > limits.maxProcesses) {
      overLimit("processes", `more than ${limits.maxProcesses} processes at once`);
    }
  }, 10);
  let memoryTick = 0;
  const slow = setInterval(() => {
    memoryTick += 1;
    const rss = residentBytes(pids());
    if (rss > limits.maxMemoryBytes) {
      overLimit("memory", `the processes use more than ${mib(limits.maxMemoryBytes)} of memory`);
    }
    // A disk walk costs more than a process count: every tick while walks are quick (a small
    // workspace), every half second once they are not. Each single file is capped by ulimit -f.
    if (lastWalkMs < 10 || memoryTick % 5 === 0) checkDisk();
  }, 100);
  return () => {
    clearInterval(fast);
    clearInterval(slow);
  };
}

function startCommand() {
  const atStart = diskUse(config.workspace, Number.POSITIVE_INFINITY);
  if (atStart > allowed) {
    allowed = atStart;
    note(
      `the workspace already uses ${mib(atStart)}, over its cap of ${mib(limits.maxWorkspaceBytes)}: delete files; it may not grow`,
    );
  }
  const fileBlocks = Math.max(1, Math.floor(limits.maxWorkspaceBytes / 1024));
  child = spawn(
    "/bin/bash",
    [
      "-c",
      WRAPPER,
      "nightshift-command",
      config.command,
      String(limits.cpuSeconds),
      String(fileBlocks),
    ],
    { cwd: config.cwd, stdio: ["ignore", 1, config.separateStderr ? 2 : 1], env: process.env },
  );
  const unwatch = watch();
  child.on("error", (error) => {
    unwatch();
    report({ kind: "exit", code: 127, signal: null, error: error.message });
    process.exit(127);
  });
  child.on("exit", (code, signal) => {
    unwatch();
    if (!stopping) checkDisk();
    if (signal === "SIGXCPU") {
      report({
        kind: "limit",
        limit: "cpu",
        detail: `a process used its ${limits.cpuSeconds} s of CPU`,
      });
    }
    if (signal === "SIGXFSZ") {
      report({
        kind: "limit",
        limit: "disk",
        detail: `a file grew past ${mib(limits.maxWorkspaceBytes)}`,
      });
    }
    report({ kind: "exit", code, signal });
    // Leftovers the command backgrounded end with it, as they do outside the sandbox.
    try {
      process.kill(-1, "SIGKILL");
    } catch {}
    closeSync(3);
    process.exit(code ?? 128);
  });
}

if (config.gateway) {
  const relay = net.createServer((inside) => {
    const outside = net.connect(config.gateway.socket);
    inside.pipe(outside).pipe(inside);
    inside.on("error", () => outside.destroy());
    outside.on("error", () => inside.destroy());
  });
  relay.on("error", (error) => {
    report({ kind: "exit", code: 126, signal: null, error: `gateway relay: ${error.message}` });
    process.exit(126);
  });
  relay.listen(config.gateway.port, "127.0.0.1", startCommand);
} else {
  startCommand();
}
