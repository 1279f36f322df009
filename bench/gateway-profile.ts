/**
 * Summarises a V8 .cpuprofile (from `BENCH_PROFILE=<dir> npm run bench:gateway`, which runs the
 * gateway under `node --cpu-prof`): the top functions by self time, and self time by package or
 * source file, as percentages of the profile's samples.
 *
 *   npx tsx bench/gateway-profile.ts <file.cpuprofile> [top=40] [skipSeconds=auto]
 *
 * Startup (module loading, the embedded ledger's initdb) is left out: samples count from the first
 * request the gateway handles (or from skipSeconds into the profile).
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, skipArg] = process.argv.slice(2);
if (!file) throw new Error("usage: gateway-profile.ts <file.cpuprofile> [top]");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const top = Number(topArg ?? 40);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
// Where the gateway's request handler first shows up: load starts there.
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
const inHandler = (id: number) => {
  for (let cur: number | undefined = id; cur !== undefined; cur = parentOf.get(cur)) {
    const f = (byId.get(cur) as Node).callFrame;
    if (f.functionName === "handle" && f.url.endsWith("src/gateway/gateway.ts")) return true;
  }
  return false;
};
let startAt = 0;
let clock = 0;
const times = profile.samples.map((id, i) => {
  clock += profile.timeDeltas[i] ?? 0;
  if (!startAt && skipArg === undefined && inHandler(id)) startAt = clock;
  return clock;
});
if (skipArg !== undefined) startAt = Number(skipArg) * 1e6;
const self = new Map<number, number>();
profile.samples.forEach((id, i) => {
  if ((times[i] as number) < startAt) return;
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = [...self]
  .filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)")
  .reduce((a, [, t]) => a + t, 0);
const busy = total - idle;

function where(url: string): string {
  if (url === "") return "(native/v8)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] as string);
  }
  if (url.startsWith("node:")) return url;
  const src = url.indexOf("/src/");
  return src >= 0 ? url.slice(src + 1) : url;
}

const fns = new Map<string, number>();
const places = new Map<string, number>();
for (const [id, t] of self) {
  const node = byId.get(id) as Node;
  const f = node.callFrame;
  if (f.functionName === "(idle)") continue;
  const name = `${f.functionName || "(anonymous)"}  ${where(f.url)}:${f.lineNumber + 1}`;
  fns.set(name, (fns.get(name) ?? 0) + t);
  places.set(where(f.url), (places.get(where(f.url)) ?? 0) + t);
}
const pct = (t: number) => `${((100 * t) / busy).toFixed(1).padStart(5)}%`;
console.log(
  `from ${(startAt / 1e6).toFixed(1)} s: busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled`,
);
console.log("\nself time by package / file (% of busy):");
for (const [p, t] of [...places].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
  console.log(`  ${pct(t)}  ${p}`);
}
console.log(`\ntop ${top} functions by self time (% of busy):`);
for (const [n, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${pct(t)}  ${n}`);
}

// Inclusive time of a few gateway entry points: what each stage costs with all it calls.
const inclusive = new Map<string, number>();
for (const [id, t] of self) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parentOf.get(cur)) {
    const f = (byId.get(cur) as Node).callFrame;
    if (f.functionName === "(idle)") break;
    const name = `${f.functionName || "(anonymous)"}  ${where(f.url)}:${f.lineNumber + 1}`;
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + t);
  }
}
console.log(`\ntop ${top} functions by inclusive time (% of busy):`);
for (const [n, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${pct(t)}  ${n}`);
}
