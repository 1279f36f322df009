/**
 * Child process for bench/gateway.ts: serves either the simulator or the gateway (with metering
 * into an embedded in-memory ledger) and prints one JSON line with its URL, then waits.
 */
import pino from "pino";
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
} else if (role === "gateway" && upstreamUrl) {
  const ledger = await openLedger({ kind: "memory" });
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
    limits: { runTokens: Number.MAX_SAFE_INTEGER },
    // As a user's nightshift.toml makes it: one OpenAI-compatible provider serving every model,
    // speaking Chat Completions only, so Anthropic Messages requests are translated.
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
  });
  await gateway.listen();
  const access = await gateway.openRun({ runId: claim!.run.id, orderId: claim!.order.id });
  process.stdout.write(`${JSON.stringify({ url: access.baseURL, apiKey: access.apiKey })}\n`);
  process.on("SIGTERM", async () => {
    await gateway.closeRun(claim!.run.id);
    const rows = await ledger.listModelRequests();
    process.stderr.write(`${JSON.stringify({ metered: rows.length })}\n`);
    process.exit(0);
  });
} else {
  throw new Error("usage: gateway-server.ts sim | gateway <upstream-url>");
}
