// The gateway relay: the sandbox's end of its only way out (plain JavaScript, so the node that
// runs nightshift can start it with no loader). It listens on 127.0.0.1:<gateway port> in a
// sandbox's network namespace and pipes each connection to the gateway's unix socket bound in
// from the host, then writes "ready" on stdout once, so that whoever started it waits for an
// event, not a sleep. It enforces no limit and starts nothing: see docs/sandbox.md ("network").
//
// Usage: node relay.mjs <port> <unix socket>
import net from "node:net";

const [port, socket] = process.argv.slice(2);

const relay = net.createServer((inside) => {
  const outside = net.connect(socket);
  inside.pipe(outside).pipe(inside);
  inside.on("error", () => outside.destroy());
  outside.on("error", () => inside.destroy());
});
relay.on("error", (error) => {
  process.stdout.write(`gateway relay: ${error.message}\n`);
  process.exit(126);
});
relay.listen(Number(port), "127.0.0.1", () => {
  process.stdout.write("ready\n");
  // Nothing else is written: the reader may have gone (per-command mode closes it).
  process.stdout.on("error", () => {});
});
