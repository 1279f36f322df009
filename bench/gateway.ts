/**
 * npm run bench:gateway: what the gateway costs, as it ships. In one run, against the same
 * simulator, it measures three targets side by side:
 *   direct    the simulator itself (the baseline for added latency)
 *   hop       a TCP relay in front of it (latency only: what one more hop costs, before any HTTP)
 *   floor     a bare undici pass-through proxy: the least any Node gateway can cost
 *   gateway   `nightshift gateway` as shipped: embedded ledger on disk, transcripts on, a run budget
 * for plain JSON replies and for SSE streams: throughput at 32 and 128 connections, latency (p50,
 * p99) one request at a time, and the proxy's CPU time per request (from /proc). It prints the
 * figures and the ratios to the floor, since only ratios measured in the same run mean much on a
 * shared, noisy machine. Each server and this load generator are separate processes.
 *
 * Before measuring, every target is warmed up alike: 300 sequential requests and BENCH_WARMUP
 * seconds at 32 connections per mode, so that the figures are a long-lived process's steady state
 * (V8 has optimised the hot code and tiered up the embedded ledger's WebAssembly): without that,
 * whichever target and mode came first after start-up paid for compilation in its figures.
 *
 * BENCH_SECONDS (5), BENCH_SAMPLES (1000), BENCH_ROUNDS (2), BENCH_CONNECTIONS ("32,128"),
 * BENCH_WARMUP (3).
 * BENCH_PROFILE=<dir>: run the gateway under `node --cpu-prof` and write its profile to <dir>
 * (summarise it with `npx tsx bench/gateway-profile.ts <dir>/<file>.cpuprofile`).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import http from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const DURATION_MS = Number(process.env.BENCH_SECONDS ?? 5) * 1000;
const LATENCY_SAMPLES = Number(process.env.BENCH_SAMPLES ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? "32,128").split(",").map(Number);
const WARMUP_MS = Number(process.env.BENCH_WARMUP ?? 3) * 1000;
const SERVER = fileURLToPath(new URL("./gateway-server.ts", import.meta.url));
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

type Mode = "json" | "sse";
interface Target {
  name: "direct" | "hop" | "floor" | "gateway";
  url: string;
  apiKey: string;
  pid: number | undefined;
  sent: number;
}

const PROFILE_DIR = process.env.BENCH_PROFILE;

async function startChild(args: string[], stderr: "inherit" | "pipe" = "inherit") {
  const profile =
    PROFILE_DIR && args[0] === "gateway" ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", SERVER, ...args], {
    stdio: ["ignore", "pipe", stderr],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, "line")) as [string];
  return { child, info: JSON.parse(line) as { url: string; apiKey?: string } };
}

const bodies: Record<Mode, string> = {
  json: JSON.stringify({
    model: "sim-fast",
    messages: [{ role: "user", content: "Say something short." }],
    max_tokens: 64,
  }),
  sse: JSON.stringify({
    model: "sim-fast",
    messages: [{ role: "user", content: "Say something short." }],
    max_tokens: 64,
    stream: true,
    stream_options: { include_usage: true },
  }),
};

// node:http with keep-alive: fetch's own overhead would make the load generator the bottleneck.
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function send(target: Target, mode: Mode): Promise<void> {
  const body = bodies[mode];
  target.sent++;
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${target.url}/chat/completions`,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          authorization: `Bearer ${target.apiKey}`,
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

/** The process's user + system CPU time so far, in ms. */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  // After "pid (comm) ": state is field 0, utime 11, stime 12.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

async function throughput(
  target: Target,
  mode: Mode,
  connections: number,
  durationMs = DURATION_MS,
) {
  const end = performance.now() + durationMs;
  const cpuBefore = cpuMs(target.pid);
  const started = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        await send(target, mode);
        done++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { rps: done / seconds, cpuPerRequestMs: (cpuMs(target.pid) - cpuBefore) / done };
}

async function latency(target: Target, mode: Mode): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const start = performance.now();
    await send(target, mode);
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
const relay = await startChild(["relay", sim.info.url]);
const floor = await startChild(["floor", sim.info.url]);
const shipped = await startChild(["gateway", sim.info.url], "pipe");
const targets: Target[] = [
  { name: "direct", url: sim.info.url, apiKey: "none", pid: sim.child.pid, sent: 0 },
  { name: "floor", url: floor.info.url, apiKey: "none", pid: floor.child.pid, sent: 0 },
  {
    name: "gateway",
    url: shipped.info.url,
    apiKey: shipped.info.apiKey as string,
    pid: shipped.child.pid,
    sent: 0,
  },
];

// Latency only: what one more hop costs on this machine, before any HTTP work.
const hop: Target = { name: "hop", url: relay.info.url, apiKey: "none", pid: undefined, sent: 0 };

type Figures = { rps: number[]; cpu: number[] };
const results = new Map<string, Figures>();
const latencies = new Map<string, { p50: number[]; p99: number[] }>();
const keyOf = (t: Target, mode: Mode, c: number) => `${t.name}/${mode}/${c}`;

try {
  for (const target of targets) {
    for (const mode of ["json", "sse"] as const) {
      for (let i = 0; i < 300; i++) await send(target, mode); // warm up
      if (WARMUP_MS > 0) await throughput(target, mode, 32, WARMUP_MS);
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ["json", "sse"] as const) {
      // Alternate the targets so that drifting machine load hits all alike.
      for (const target of targets) {
        for (const c of CONNECTIONS) {
          const r = await throughput(target, mode, c);
          const f = results.get(keyOf(target, mode, c)) ?? { rps: [], cpu: [] };
          f.rps.push(r.rps);
          f.cpu.push(r.cpuPerRequestMs);
          results.set(keyOf(target, mode, c), f);
        }
        const l = await latency(target, mode);
        const f = latencies.get(keyOf(target, mode, 1)) ?? { p50: [], p99: [] };
        f.p50.push(l.p50);
        f.p99.push(l.p99);
        latencies.set(keyOf(target, mode, 1), f);
        if (target.name === "direct") {
          const h = await latency(hop, mode);
          const hf = latencies.get(keyOf(hop, mode, 1)) ?? { p50: [], p99: [] };
          hf.p50.push(h.p50);
          hf.p99.push(h.p99);
          latencies.set(keyOf(hop, mode, 1), hf);
        }
      }
    }
  }
  console.log(
    `gateway benchmark: ${WARMUP_MS / 1000}s warm-up per target and mode; ${ROUNDS} rounds; ${DURATION_MS / 1000}s at ${CONNECTIONS.join(" and ")} connections; ${LATENCY_SAMPLES} sequential requests for latency; medians of rounds`,
  );
  console.log(
    "gateway = as shipped: embedded ledger on disk, transcripts on, run budget reserved in the ledger",
  );
  for (const mode of ["json", "sse"] as const) {
    console.log(`\n${mode}:`);
    for (const target of targets) {
      const parts = [`  ${target.name.padEnd(8)}`];
      for (const c of CONNECTIONS) {
        const f = results.get(keyOf(target, mode, c)) as Figures;
        const cpu = target.name === "direct" ? "" : `, ${median(f.cpu).toFixed(3)} ms CPU/req`;
        parts.push(`@${c}: ${median(f.rps).toFixed(0).padStart(6)} req/s${cpu}`);
      }
      const l = latencies.get(keyOf(target, mode, 1)) as { p50: number[]; p99: number[] };
      parts.push(`@1: p50 ${median(l.p50).toFixed(3)} ms, p99 ${median(l.p99).toFixed(3)} ms`);
      console.log(parts.join("   "));
    }
    const get = (name: Target["name"], c: number) => results.get(`${name}/${mode}/${c}`) as Figures;
    const p50 = (name: Target["name"]) =>
      median((latencies.get(`${name}/${mode}/1`) as { p50: number[] }).p50);
    for (const c of CONNECTIONS) {
      const rps = median(get("gateway", c).rps) / median(get("floor", c).rps);
      const cpu = median(get("gateway", c).cpu) / median(get("floor", c).cpu);
      console.log(
        `  @${c}: gateway / floor throughput ${rps.toFixed(2)}, CPU per request ${cpu.toFixed(2)}x`,
      );
    }
    console.log(
      `  @1: added p50 over direct: one TCP hop (no HTTP) +${(p50("hop") - p50("direct")).toFixed(3)} ms, floor +${(p50("floor") - p50("direct")).toFixed(3)} ms, gateway +${(p50("gateway") - p50("direct")).toFixed(3)} ms; p99: floor ${median((latencies.get(`floor/${mode}/1`) as { p99: number[] }).p99).toFixed(3)} ms, gateway ${median((latencies.get(`gateway/${mode}/1`) as { p99: number[] }).p99).toFixed(3)} ms`,
    );
  }
  const at32 = (mode: Mode) => {
    const g = results.get(`gateway/${mode}/32`);
    const f = results.get(`floor/${mode}/32`);
    return g && f
      ? {
          rps: median(g.rps) / median(f.rps),
          cpu: median(g.cpu) / median(f.cpu),
        }
      : undefined;
  };
  const p50At1 = (name: Target["name"]) =>
    median((latencies.get(`${name}/json/1`) as { p50: number[] }).p50);
  const added = p50At1("gateway") - p50At1("direct");
  const floorAdded = p50At1("floor") - p50At1("direct");
  for (const mode of ["json", "sse"] as const) {
    const r = at32(mode);
    if (!r) continue;
    console.log(
      `targets (${mode} @32): >= 0.6 of the floor's throughput: ${r.rps >= 0.6 ? "met" : "NOT met"}; <= 2x its CPU per request: ${r.cpu <= 2 ? "met" : "NOT met"}`,
    );
  }
  console.log(
    `target: added p50 < 0.5 ms at one connection (json): ${added < 0.5 ? "met" : "NOT met"} (+${added.toFixed(3)} ms; the floor alone adds +${floorAdded.toFixed(3)} ms on this machine, so the gateway adds +${(added - floorAdded).toFixed(3)} ms over it)`,
  );
} finally {
  const gatewayTarget = targets[2] as Target;
  const report = createInterface({ input: shipped.child.stderr as NodeJS.ReadableStream });
  const metered = new Promise<string>((resolve) => {
    report.on("line", (line) => {
      if (line.includes('"metered"')) resolve(line);
      else process.stderr.write(`${line}\n`);
    });
  });
  shipped.child.kill("SIGTERM");
  const line = await Promise.race([metered, once(shipped.child, "exit").then(() => "")]);
  const gatewayReport = line
    ? (JSON.parse(line) as { metered: number; loopDelayMs?: unknown; meterBatches?: unknown })
    : undefined;
  const rows = gatewayReport ? gatewayReport.metered : Number.NaN;
  if (gatewayReport?.loopDelayMs) {
    // What held up the gateway's thread over the whole run: the tail of the latency figures.
    console.log(
      `gateway event-loop delay (ms): ${JSON.stringify(gatewayReport.loopDelayMs)}; metering batches: ${JSON.stringify(gatewayReport.meterBatches)}`,
    );
  }
  console.log(
    `metering: ${rows} ledger rows for ${gatewayTarget.sent} requests sent through the gateway: ${rows === gatewayTarget.sent ? "exact" : "NOT exact"}`,
  );
  floor.child.kill("SIGTERM");
  relay.child.kill("SIGTERM");
  sim.child.kill("SIGTERM");
}
