import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BubblewrapBackend, type RunSandbox } from "../../src/sandbox/index.ts";

/**
 * Quiet attempts — their errors sent to /dev/null, so the output shows nothing — are still
 * recorded where the host can observe them reliably: the kernel's counters of the sandbox's own
 * network namespace. Loopback only: the probes aim at 127.0.0.1 ports inside the sandbox, and a
 * host server on loopback that must never see a connection.
 */

let dir: string;
let gateway: http.Server;
let gatewayRequests = 0;
let forbidden: net.Server;
let forbiddenPort = 0;
let forbiddenConnections = 0;
let sandbox: RunSandbox;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nightshift-attempts-"));
  gateway = http.createServer((_req, res) => {
    gatewayRequests += 1;
    res.end("gateway ok");
  });
  await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  forbidden = net.createServer((socket) => socket.end("no"));
  forbidden.on("connection", () => {
    forbiddenConnections += 1;
  });
  await new Promise<void>((resolve) => forbidden.listen(0, "127.0.0.1", resolve));
  forbiddenPort = (forbidden.address() as net.AddressInfo).port;
  sandbox = await new BubblewrapBackend().create({
    workspacePath: dir,
    gateway: {
      url: `http://127.0.0.1:${(gateway.address() as net.AddressInfo).port}/v1`,
      apiKey: "attempts",
    },
  });
});

afterAll(async () => {
  await sandbox?.dispose();
  gateway?.close();
  forbidden?.close();
  rmSync(dir, { recursive: true, force: true });
});

// The command goes on working after its attempt, as a sneaky one would; the host samples the
// counters while it runs.
const thenWork = "; for i in $(seq 1 20); do sleep 0.05; done; echo done";

describe("quiet attempts seen from outside the sandbox", () => {
  it("records a silenced TCP connection to a local port that is not the gateway, with its command", async () => {
    const command = `(echo hi > /dev/tcp/127.0.0.1/${forbiddenPort}) 2>/dev/null${thenWork}`;
    const result = await sandbox.exec({ command, timeoutMs: 20_000 });
    expect(result.output).toBe("done\n");
    expect(result.violations).toEqual([
      {
        kind: "network_blocked",
        detail: expect.stringContaining(
          "1 TCP connection(s) to a local port that is not the gateway",
        ),
        command,
      },
    ]);
    expect(forbiddenConnections).toBe(0);
  });

  it("records a silenced UDP datagram to a closed local port", async () => {
    const command = `(echo hi > /dev/udp/127.0.0.1/${forbiddenPort}) 2>/dev/null${thenWork}`;
    const result = await sandbox.exec({ command, timeoutMs: 20_000 });
    expect(result.violations.map((v) => [v.kind, v.detail])).toEqual([
      ["network_blocked", expect.stringContaining("UDP datagram(s) to a closed local port")],
    ]);
  });

  it("records nothing for the gateway, or for a server the command runs itself", async () => {
    const result = await sandbox.exec({
      command: `node -e "
        const net = require('net');
        const own = net.createServer((s) => s.end('own')).listen(0, '127.0.0.1', async () => {
          const reply = await fetch(process.env.NIGHTSHIFT_GATEWAY_URL + '/models').then((r) => r.text());
          net.connect(own.address().port, '127.0.0.1').on('data', (d) => { console.log(reply, String(d)); process.exit(0); });
        });"${thenWork}`,
      timeoutMs: 20_000,
    });
    expect(result.output).toBe("gateway ok own\ndone\n");
    expect(result.violations).toEqual([]);
    expect(gatewayRequests).toBeGreaterThanOrEqual(1);
  });
});
