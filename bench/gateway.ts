/**
 * npm run bench:gateway: what the gateway costs. In one run, against the same simulator, it
 * measures requests per second under load and per-request latency (p50, p99) one at a time,
 * straight to the simulator (the baseline) and through the gateway with metering on. It prints
 * the figures and the ratios, since only ratios measured in the same run mean much on a shared,
 * noisy machine. The simulator, the gateway and this load generator are separate processes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const DURATION_MS = Number(process.env.BENCH_SECONDS ?? 8) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const LATENCY_SAMPLES = Number(process.env.BENCH_SAMPLES ?? 1500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const SERVER = fileURLToPath(new URL("./gateway-server.ts", import.meta.url));

interface Target {
  name: string;
  url: string;
  apiKey: string;
  /** "anthropic": the same request as Anthropic Messages, which the gateway translates to Chat. */
  protocol?: "chat" | "anthropic";
}

async function startChild(
  args: string[],
): Promise<{ child: ChildProcess; info: { url: string; apiKey?: string } }> {
  const child = spawn(process.execPath, ["--import", "tsx", SERVER, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, "line")) as [string];
  return { child, info: JSON.parse(line) };
}

const body = JSON.stringify({
  model: "sim-fast",
  messages: [{ role: "user", content: "Say something short." }],
  max_tokens: 64,
});

function wire(target: Target): { path: string; headers: Record<string, string> } {
  if (target.protocol === "anthropic") {
    return {
      path: "/messages",
      headers: { "x-api-key": target.apiKey, "anthropic-version": "2023-06-01" },
    };
  }
  return { path: "/chat/completions", headers: { authorization: `Bearer ${target.apiKey}` } };
}

// node:http with keep-alive: fetch's own overhead would make the load generator the bottleneck.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function request(target: Target): Promise<void> {
  return new Promise((resolve, reject) => {
    const { path, headers } = wire(target);
    const req = http.request(
      `${target.url}${path}`,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          res.statusCode === 200
            ? resolve()
            : reject(new Error(`${target.name}: HTTP ${res.statusCode} ${Buffer.concat(chunks)}`)),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function throughput(target: Target): Promise<number> {
  const end = performance.now() + DURATION_MS;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await request(target);
        done++;
      }
    }),
  );
  return done / (DURATION_MS / 1000);
}

async function latency(target: Target): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const start = performance.now();
    await request(target);
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) =>
    samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number;
  return { p50: at(0.5), p99: at(0.99) };
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

const sim = await startChild(["sim"]);
const gateway = await startChild(["gateway", sim.info.url]);
const direct: Target = { name: "sim direct", url: sim.info.url, apiKey: "none" };
const through: Target = {
  name: "via gateway",
  url: gateway.info.url,
  apiKey: gateway.info.apiKey as string,
};
const translated: Target = { ...through, name: "via gateway, translated", protocol: "anthropic" };

try {
  for (const target of [direct, through, translated]) {
    for (let i = 0; i < 200; i++) await request(target); // warm up
  }
  const results = {
    direct: { rps: [] as number[], p50: [] as number[], p99: [] as number[] },
    through: { rps: [] as number[], p50: [] as number[], p99: [] as number[] },
    translated: { rps: [] as number[], p50: [] as number[], p99: [] as number[] },
  };
  // Alternate the two so that drifting machine load hits both alike.
  for (let round = 0; round < ROUNDS; round++) {
    for (const [key, target] of [
      ["direct", direct],
      ["through", through],
      ["translated", translated],
    ] as const) {
      results[key].rps.push(await throughput(target));
      const l = await latency(target);
      results[key].p50.push(l.p50);
      results[key].p99.push(l.p99);
    }
  }
  const summary = (r: (typeof results)["direct"]) => ({
    rps: median(r.rps),
    p50: median(r.p50),
    p99: median(r.p99),
  });
  const d = summary(results.direct);
  const g = summary(results.through);
  const t = summary(results.translated);
  const row = (name: string, r: typeof d) =>
    `${name.padEnd(24)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(3)} ms   p99 ${r.p99.toFixed(3)} ms`;
  console.log(
    `gateway benchmark: ${ROUNDS} rounds, ${DURATION_MS / 1000}s at concurrency ${CONCURRENCY}, ${LATENCY_SAMPLES} sequential requests for latency`,
  );
  console.log(row("simulator direct (base)", d));
  console.log(row("through the gateway", g));
  console.log(row("  translated (Messages)", t));
  console.log(`throughput ratio (gateway / direct): ${(g.rps / d.rps).toFixed(3)}`);
  console.log(
    `added latency: p50 +${(g.p50 - d.p50).toFixed(3)} ms, p99 +${(g.p99 - d.p99).toFixed(3)} ms`,
  );
  console.log(
    `translation (Anthropic Messages -> Chat and back) / native: throughput ${(t.rps / g.rps).toFixed(3)}, added p50 +${(t.p50 - g.p50).toFixed(3)} ms`,
  );
  console.log(
    `targets: >= 2000 req/s through the gateway: ${g.rps >= 2000 ? "met" : "NOT met"}; < 1 ms added p50: ${g.p50 - d.p50 < 1 ? "met" : "NOT met"}`,
  );
} finally {
  gateway.child.kill("SIGTERM");
  await once(gateway.child, "exit");
  sim.child.kill("SIGTERM");
}
