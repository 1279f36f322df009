import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { SandboxError } from "./errors.ts";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** The gateway's loopback port, from the URL the run is given; anything else is refused. */
export function gatewayAddress(url: string): { host: string; port: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(`the gateway URL ${JSON.stringify(url)} is not a URL`);
  }
  if (!LOOPBACK.has(parsed.hostname)) {
    throw invalid(`the gateway URL ${url} is not on loopback; a sandbox relays only to loopback`);
  }
  const port = Number(parsed.port || (parsed.protocol === "https:" ? 443 : 80));
  const host =
    parsed.hostname === "localhost" ? "127.0.0.1" : parsed.hostname.replace(/^\[|\]$/g, "");
  return { host, port };
}

function invalid(detail: string): SandboxError {
  return new SandboxError(
    "invalid_sandbox_spec",
    detail,
    "let the gateway listen on 127.0.0.1 ([gateway] host in nightshift.toml)",
  );
}

/**
 * The host half of the only way out of a sandbox: a unix socket (bound into the sandbox) whose
 * every connection is piped to the gateway's TCP port. The sandbox has no network of its own, so
 * what it reaches through this socket is the gateway and nothing else.
 */
export class GatewayRelay {
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly dir: string,
    readonly socketPath: string,
  ) {}

  static async start(target: { host: string; port: number }): Promise<GatewayRelay> {
    // A private folder (mode 700) in the host's tmp: short enough for a unix socket path.
    const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-relay-"));
    const socketPath = path.join(dir, "gateway.sock");
    const server = net.createServer();
    const relay = new GatewayRelay(server, dir, socketPath);
    server.on("connection", (inside) => relay.pipe(inside, target));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => resolve());
    });
    return relay;
  }

  private pipe(inside: net.Socket, target: { host: string; port: number }): void {
    const outside = net.connect(target.port, target.host);
    for (const socket of [inside, outside]) {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    }
    inside.pipe(outside).pipe(inside);
    inside.on("error", () => outside.destroy());
    outside.on("error", () => inside.destroy());
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
