/**
 * npm run bench:sandbox: what the sandbox costs per command. In one run it starts the same short
 * commands unsandboxed (runCommand: bash in its own process group, the baseline), in a bare
 * `bwrap --unshare-all` (the floor any bubblewrap sandbox pays), and in nightshift's bubblewrap
 * sandbox (namespaces, mounts, the host-side cgroup and limit watch), without a gateway and with
 * one (as shipped: commands join the run's network holder where this host allows it, else each
 * starts its own relay; the row says which). Targets take turns sample by sample, so load that
 * drifts during the run hits them alike; it prints medians, ratios against the baseline, and the
 * time added over the bare bwrap start as the median of the paired differences (each sample
 * against the bare bwrap sample taken just before it). Only figures from one run mean much on a
 * shared machine.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { BubblewrapBackend, type RunSandbox, runCommand } from "../src/sandbox/index.ts";
import { superviseProcess } from "../src/sandbox/supervise.ts";

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COMMANDS = { true: "true", "node -e 0": "node -e 0" } as const;

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nightshift-bench-sandbox-"));
  execFileSync("git", ["init", "-q", dir]);
  const gateway = http.createServer((_req, res) => res.end("ok"));
  await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  const port = (gateway.address() as AddressInfo).port;
  const backend = new BubblewrapBackend();
  const plain = await backend.create({ workspacePath: dir });
  const relayed = await backend.create({
    workspacePath: dir,
    gateway: { url: `http://127.0.0.1:${port}/v1`, apiKey: "bench" },
  });
  const relayMode = relayed.limitsNote?.relay?.startsWith("one per run")
    ? "per run"
    : "per command";
  const targets: Record<string, (command: string) => Promise<unknown>> = {
    unsandboxed: (command) => runCommand({ command, cwd: dir, timeoutMs: 30_000 }),
    "bare bwrap --unshare-all": (command) => bareBwrap(backend.bwrapPath, dir, command),
    bubblewrap: (command) => exec(plain, command),
    [`bubblewrap + relay (${relayMode})`]: (command) => exec(relayed, command),
  };
  const samples: Record<string, number[]> = {};
  const overBare: Record<string, number[]> = {};
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, command] of Object.entries(COMMANDS)) {
        for (let i = 0; i < SAMPLES; i++) {
          // A new order each sample: a network namespace's teardown runs on in the kernel after
          // its command ends and slows the next one made, so a fixed order would bill one target
          // for another's namespace.
          const took: Record<string, number> = {};
          for (const [name, run] of shuffled(Object.entries(targets))) {
            const started = performance.now();
            await run(command);
            took[name] = performance.now() - started;
          }
          const bare = took["bare bwrap --unshare-all"] as number;
          for (const [name, ms] of Object.entries(took)) {
            const key = `${label}|${name}`;
            samples[key] = [...(samples[key] ?? []), ms];
            overBare[key] = [...(overBare[key] ?? []), ms - bare];
          }
        }
      }
    }
  } finally {
    await plain.dispose();
    await relayed.dispose();
    gateway.close();
    await rm(dir, { recursive: true, force: true });
  }
  console.log(
    `per-command start-up, ${SAMPLES} samples x ${ROUNDS} rounds, targets taking turns, median (p90), load ${os.loadavg()[0]?.toFixed(1)}`,
  );
  for (const label of Object.keys(COMMANDS)) {
    const base = median(samples[`${label}|unsandboxed`]!);
    console.log(`\ncommand: ${label}`);
    for (const name of Object.keys(targets)) {
      const values = samples[`${label}|${name}`]!;
      const m = median(values);
      const over = median(overBare[`${label}|${name}`]!);
      console.log(
        `  ${name.padEnd(32)} ${m.toFixed(1).padStart(7)} ms  (p90 ${quantile(values, 0.9).toFixed(1)} ms)  ratio ${(m / base).toFixed(2)}x  added ${(m - base).toFixed(1)} ms  over bare bwrap ${Number.isNaN(over) ? "-" : `${over.toFixed(1)} ms`}`,
      );
    }
  }
}

async function exec(sandbox: RunSandbox, command: string) {
  const result = await sandbox.exec({ command, timeoutMs: 30_000 });
  if (result.exitCode !== 0) throw new Error(`${command} failed in the sandbox: ${result.output}`);
}

/** The floor: bwrap with every namespace unshared and the host's root read-only, nothing else. */
async function bareBwrap(bwrap: string, cwd: string, command: string) {
  const ending = await superviseProcess(
    {
      file: bwrap,
      args: ["--unshare-all", "--ro-bind", "/", "/", "--", "/bin/bash", "-c", command],
      cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    },
    { timeoutMs: 30_000, maxOutputBytes: 64 * 1024, killGraceMs: 1_000 },
  );
  if (ending.kind !== "exited" || ending.code !== 0)
    throw new Error(`bare bwrap failed: ${command}`);
}

function shuffled<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

function median(values: number[]): number {
  return quantile(values, 0.5);
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

await main();
