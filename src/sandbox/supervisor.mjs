// The gateway relay: the first program inside a sandbox whose run has a gateway (plain
// JavaScript, so the node that runs nightshift can start it with no loader). It listens on
// 127.0.0.1:<gateway port> in the sandbox's own network namespace and pipes each connection to the
// gateway's unix socket bound in from the host: the only way out of the sandbox. Then it starts
// the command and reports how it ended as a JSON line on fd 3 (not passed on to the command).
//
// It enforces no limit: those are set by the host on the command's cgroup and rlimits before the
// sandbox starts, and watched from the host (see limit-watch.ts). Stopping or killing this process
// takes away the command's own way to the gateway and nothing else.
import { spawn } from "node:child_process";
import { closeSync, writeSync } from "node:fs";
import net from "node:net";

const config = JSON.parse(process.argv[2] ?? "{}");

function report(entry) {
  try {
    writeSync(3, `${JSON.stringify(entry)}\n`);
  } catch {
    // The host stopped listening: nothing left to tell.
  }
}

function startCommand() {
  // stdout and stderr in one stream in write order, unless the host keeps them apart.
  const wrapper = config.separateStderr ? 'exec bash -c "$1"' : 'exec 2>&1; exec bash -c "$1"';
  const child = spawn("/bin/bash", ["-c", wrapper, "nightshift-command", config.command], {
    cwd: config.cwd,
    stdio: ["ignore", 1, config.separateStderr ? 2 : 1],
    env: process.env,
  });
  child.on("error", (error) => {
    report({ kind: "exit", code: 127, signal: null, error: error.message });
    process.exit(127);
  });
  child.on("exit", (code, signal) => {
    report({ kind: "exit", code, signal });
    closeSync(3);
    process.exit(code ?? 128);
  });
}

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
