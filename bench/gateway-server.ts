/**
 * Child process for bench/gateway.ts. Serves one of:
 *   sim                     the simulator (the upstream every target reaches)
 *   relay <upstream>        a TCP relay: one more hop, no HTTP (latency reference only)
 *   floor <upstream>        a bare undici pass-through proxy: the floor for any Node gateway
 *   gateway <upstream>      the gateway as `nightshift gateway` ships: embedded ledger on disk,
 *                           transcripts on, a run budget (reserved in the ledger on every request)
 * and prints one JSON line with its URL, then waits for SIGTERM.
 */

import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
import pino from "pino";
import { Agent, request } from "undici";
import { providerSettings } from "../src/config/index.ts";
import { bundledPrices, Gateway, modelRouter } from "../src/gateway/index.ts";
import { openLedger } from "../src/ledger/index.ts";
import { startSimulator } from "../src/sim/index.ts";

const [role, upstreamUrl] = process.argv.slice(2);

if (role === "sim") {
  const sim = await startSimulator({
    policy: () => ({ content: "The quick brown fox jumps over the lazy dog." }),
  });
  process.stdout.write(`${JSON.stringify({ url: sim.url })}\n`);
} else if (role === "relay" && upstreamUrl) {
  // One more TCP hop and nothing else (no HTTP parsing): what the extra hop itself costs at one
  // connection on this machine (two more wake-ups and loopback transfers per request).
  const upstream = new URL(upstreamUrl);
  const server = net.createServer({ noDelay: true }, (client) => {
    const socket = net.connect({
      host: upstream.hostname,
      port: Number(upstream.port),
      noDelay: true,
    });
    client.pipe(socket).pipe(client);
    const close = () => {
      client.destroy();
      socket.destroy();
    };
    client.on("error", close);
    socket.on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/v1` })}\n`);
  process.on("SIGTERM", () => process.exit(0));
} else if (role === "floor" && upstreamUrl) {
  // What any Node proxy must do at least: read the request, send it on, stream the answer back.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 512 });
  const server = http.createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const upstream = await request(`${upstreamUrl}${req.url?.replace(/^\/v1/, "")}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer bench" },
        body: Buffer.concat(chunks),
        dispatcher,
      });
      res.writeHead(upstream.statusCode, {
        "content-type": String(upstream.headers["content-type"] ?? "application/json"),
      });
      await pipeline(upstream.body, res);
    } catch (error) {
      res.destroy(error as Error);
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(
    `${JSON.stringify({ url: `http://127.0.0.1:${port}/v1`, apiKey: "none" })}\n`,
  );
  process.on("SIGTERM", () => process.exit(0));
} else if (role === "gateway" && upstreamUrl) {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), "nightshift-bench-"));
  const ledger = await openLedger({ kind: "embedded", dataDir: path.join(stateDir, "ledger") });
  await ledger.addOrders([{ title: "bench" }]);
  const claim = await ledger.claimNext({
    workerId: "bench",
    leaseMs: 3_600_000,
    agent: "bench",
    model: "sim-fast",
  });
  const gateway = new Gateway({
    ledger,
    logger: pino({ level: "warn" }),
    prices: bundledPrices,
    // A run budget, as shipped ([budget] max_tokens_per_run), set high enough that the bench
    // never exhausts it: every request still reserves in the ledger and is settled there.
    limits: { runTokens: 1e12 },
    router: modelRouter([
      {
        ...providerSettings("sim", { kind: "openai-compatible", base_url: upstreamUrl }),
        upstream: {
          name: "sim",
          baseURL: upstreamUrl,
          apiKey: "bench",
          auth: "bearer",
          versionedBase: true,
        },
      },
    ]),
    retry: { attempts: 3 },
    exclusiveLedger: true, // as the factory sets it for the embedded ledger
    transcriptsDir: path.join(stateDir, "transcripts"),
  });
  // What blocks the gateway's one thread, for the latency figures' tail: the event loop's delay,
  // and how long each metering batch took (the embedded ledger runs on this thread).
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const batches: number[] = [];
  const metering = ledger.metering;
  const record = metering.recordModelRequests.bind(metering);
  metering.recordModelRequests = async (rows) => {
    const t = performance.now();
    await record(rows);
    batches.push(performance.now() - t, rows.length);
  };
  await gateway.listen();
  const access = await gateway.openRun({ runId: claim!.run.id, orderId: claim!.order.id });
  process.stdout.write(`${JSON.stringify({ url: access.baseURL, apiKey: access.apiKey })}\n`);
  process.on("SIGTERM", async () => {
    await gateway.closeRun(claim!.run.id);
    await gateway.close();
    const rows = await ledger.metering.listModelRequests();
    const ms = batches.filter((_, i) => i % 2 === 0).sort((a, b) => a - b);
    const rowsPer = batches.filter((_, i) => i % 2 === 1);
    process.stderr.write(
      `${JSON.stringify({
        metered: rows.length,
        loopDelayMs: {
          p50: loopDelay.percentile(50) / 1e6,
          p99: loopDelay.percentile(99) / 1e6,
          max: loopDelay.max / 1e6,
        },
        meterBatches: {
          count: ms.length,
          rowsMean: rowsPer.reduce((a, b) => a + b, 0) / Math.max(1, rowsPer.length),
          msP50: ms[Math.floor(ms.length / 2)],
          msP99: ms[Math.floor(ms.length * 0.99)],
          msMax: ms.at(-1),
        },
      })}\n`,
    );
    await ledger.close();
    await rm(stateDir, { recursive: true, force: true });
    process.exit(0);
  });
} else {
  throw new Error(
    "usage: gateway-server.ts sim | relay <upstream-url> | floor <upstream-url> | gateway <upstream-url>",
  );
}
