import { readFileSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Kernel limits set from outside the sandbox: each sandboxed command runs in a cgroup that
 * nightshift makes before the command starts and removes after it ends. The sandbox cannot see
 * /sys/fs/cgroup, owns no capability, and every limit (pids.max, memory.max, cpu.max) is written
 * by the host, so nothing inside can switch one off: stopping or killing any process of the
 * sandbox changes nothing about them.
 *
 * One small interface over the two layouts:
 *  - cgroup v2 (the unified hierarchy, what most Linux hosts run): one group with pids.max,
 *    memory.max, cpu.max, killed at once through cgroup.kill. The parent is nightshift's own
 *    group, which must be delegated to it (systemd: `Delegate=yes`; docs/sandbox.md).
 *  - cgroup v1 (hybrid hosts): a group in each of the pids, memory, cpu and freezer hierarchies,
 *    with pids.max, memory.limit_in_bytes, cpu.cfs_quota_us; killed frozen (freezer), so that no
 *    process can fork while its siblings are being killed.
 * Where a controller is not writable, `describe()` says which limit is then not enforced by the
 * kernel, and the sandbox reports it (a `sandbox_limits` note on every run, the self-test, doctor).
 */

export type Controller = "pids" | "memory" | "cpu";
export const CONTROLLERS: readonly Controller[] = ["pids", "memory", "cpu"];

export interface CgroupLimits {
  /** Tasks (processes and threads) at once. */
  maxTasks: number;
  maxMemoryBytes: number;
  /** CPU time per wall second, in cores (1.5 = one and a half cores); 0 for no cap. */
  maxCpus: number;
}

/** What the kernel saw happen in a command's group, read from outside. */
export interface CgroupUsage {
  /** Processes (thread-group leaders) in the group now. */
  processes: number;
  /** Their pids (as the host sees them). */
  pids: number[];
  /** Forks the kernel refused at pids.max. */
  forksRefused: number;
  /** Processes the kernel's OOM killer ended at the memory cap. */
  oomKills: number;
}

export interface CommandCgroup {
  /** Write a pid into each of these to put that process (and its future children) in the group. */
  readonly procsFiles: string[];
  usage(): Promise<CgroupUsage>;
  /**
   * Kills every process of the group, frozen first where the host can freeze it, and waits until
   * the group is empty; with `wait: false`, returns once every process was sent SIGKILL (none of
   * them runs another instruction of its own; the last may still be tearing down its namespaces).
   */
  killAll(options?: { wait?: boolean }): Promise<void>;
  remove(): Promise<void>;
}

export interface CgroupHost {
  readonly version: 1 | 2;
  /** Controllers whose limits the kernel enforces here. */
  readonly enforced: Controller[];
  /** Why the others are not, in a sentence (empty when all are). */
  readonly missing: string;
  create(limits: CgroupLimits): Promise<CommandCgroup>;
}

export type CgroupDetection = { host: CgroupHost } | { host: undefined; missing: string };

const CGROUP_ROOT = "/sys/fs/cgroup";
let counter = 0;

/** Detects the host's cgroup layout once per process; sweeps groups left by dead processes. */
export async function detectCgroups(): Promise<CgroupDetection> {
  const own = await readFile("/proc/self/cgroup", "utf8").catch(() => "");
  const unified = await readFile(path.join(CGROUP_ROOT, "cgroup.controllers"), "utf8").catch(
    () => undefined,
  );
  const found =
    unified !== undefined ? await detectV2(own, unified.split(/\s+/)) : await detectV1(own);
  if (found.host) {
    for (const dir of parentsOf(found.host)) await sweepStale(dir);
  }
  return found;
}

const parentDirs = new WeakMap<CgroupHost, string[]>();
function parentsOf(host: CgroupHost): string[] {
  return parentDirs.get(host) ?? [];
}

async function detectV2(own: string, rootControllers: string[]): Promise<CgroupDetection> {
  const ownPath = /^0::(.*)$/m.exec(own)?.[1] ?? "/";
  const dir = path.join(CGROUP_ROOT, ownPath);
  const available = (await readWords(path.join(dir, "cgroup.controllers"))).filter((c) =>
    (CONTROLLERS as string[]).includes(c),
  ) as Controller[];
  if (!(await writableDir(dir))) {
    return {
      host: undefined,
      missing: `nightshift's cgroup ${dir} is not writable (run it in a delegated cgroup: systemd-run --user --scope -p Delegate=yes …)`,
    };
  }
  let enabled = (await readWords(path.join(dir, "cgroup.subtree_control"))) as Controller[];
  const wanted = available.filter((c) => !enabled.includes(c));
  if (wanted.length > 0 && ownPath !== "/") {
    // A group with processes cannot hand controllers to children ("no internal processes"):
    // nightshift moves itself into a leaf of its own group first.
    const leaf = path.join(dir, `nightshift-host-${process.pid}`);
    await mkdir(leaf).catch(() => undefined);
    await writeFile(path.join(leaf, "cgroup.procs"), String(process.pid)).catch(() => undefined);
    await writeFile(
      path.join(dir, "cgroup.subtree_control"),
      wanted.map((c) => `+${c}`).join(" "),
    ).catch(() => undefined);
    enabled = (await readWords(path.join(dir, "cgroup.subtree_control"))) as Controller[];
  }
  const enforced = CONTROLLERS.filter((c) => enabled.includes(c));
  const missing = CONTROLLERS.filter((c) => !enforced.includes(c));
  const note =
    missing.length === 0
      ? ""
      : `cgroup v2 controllers ${missing.join(", ")} are not delegated to ${dir} (root offers: ${rootControllers.join(" ") || "none"})`;
  if (enforced.length === 0) return { host: undefined, missing: note };
  const host: CgroupHost = {
    version: 2,
    enforced,
    missing: note,
    create: (limits) => createV2(dir, enforced, limits),
  };
  parentDirs.set(host, [dir]);
  return { host };
}

async function createV2(
  parent: string,
  enforced: Controller[],
  limits: CgroupLimits,
): Promise<CommandCgroup> {
  const dir = path.join(parent, `nightshift-${process.pid}-${counter++}`);
  await mkdir(dir);
  const set = (file: string, value: string) => writeFile(path.join(dir, file), value);
  if (enforced.includes("pids")) await set("pids.max", String(limits.maxTasks));
  if (enforced.includes("memory")) {
    await set("memory.max", String(limits.maxMemoryBytes));
    await set("memory.swap.max", "0").catch(() => undefined);
  }
  if (enforced.includes("cpu") && limits.maxCpus > 0) {
    await set("cpu.max", `${Math.round(limits.maxCpus * 100_000)} 100000`);
  }
  const procs = path.join(dir, "cgroup.procs");
  return {
    procsFiles: [procs],
    async usage() {
      const list = readSmall(procs);
      const pids = readSmall(path.join(dir, "pids.events"));
      const memory = readSmall(path.join(dir, "memory.events"));
      return {
        processes: countLines(list),
        pids: pidsIn(list),
        forksRefused: field(pids, "max"),
        oomKills: field(memory, "oom_kill"),
      };
    },
    async killAll(options) {
      if (await allEmpty([procs])) return;
      const killed = writeSmall(dir, "cgroup.kill", "1");
      if (!killed) {
        // Kernels before 5.14: freeze, kill each process, thaw so the kills take effect.
        await set("cgroup.freeze", "1").catch(() => undefined);
        await killListed([procs]);
        await set("cgroup.freeze", "0").catch(() => undefined);
      }
      if (options?.wait !== false) await untilEmpty([procs]);
    },
    remove: () => removeDirs([dir], [procs]),
  };
}

async function detectV1(own: string): Promise<CgroupDetection> {
  const ownPaths = new Map<string, string>();
  for (const line of own.split("\n")) {
    const [, names, where] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    for (const name of names?.split(",") ?? []) ownPaths.set(name, where ?? "/");
  }
  const roots: Partial<Record<Controller | "freezer", string>> = {};
  for (const controller of [...CONTROLLERS, "freezer"] as const) {
    const base = path.join(CGROUP_ROOT, controller);
    // Our own group in that hierarchy first (a container's), then the hierarchy's root.
    for (const dir of [path.join(base, ownPaths.get(controller) ?? "/"), base]) {
      if (await writableDir(dir)) {
        roots[controller] = dir;
        break;
      }
    }
  }
  const enforced = CONTROLLERS.filter((c) => roots[c] !== undefined);
  const missing = CONTROLLERS.filter((c) => roots[c] === undefined);
  const note =
    missing.length === 0
      ? ""
      : `no writable cgroup v1 hierarchy for ${missing.join(", ")} under ${CGROUP_ROOT}`;
  if (enforced.length === 0) {
    return { host: undefined, missing: note || `no writable cgroup under ${CGROUP_ROOT}` };
  }
  const host: CgroupHost = {
    version: 1,
    enforced,
    missing: note,
    create: (limits) => createV1(roots, limits),
  };
  parentDirs.set(host, Object.values(roots));
  return { host };
}

async function createV1(
  roots: Partial<Record<Controller | "freezer", string>>,
  limits: CgroupLimits,
): Promise<CommandCgroup> {
  const name = `nightshift-${process.pid}-${counter++}`;
  const dirs: Partial<Record<Controller | "freezer", string>> = {};
  for (const [controller, root] of Object.entries(roots)) {
    const dir = path.join(root, name);
    await mkdir(dir);
    dirs[controller as Controller | "freezer"] = dir;
  }
  const set = (dir: string | undefined, file: string, value: string) =>
    dir ? writeFile(path.join(dir, file), value) : Promise.resolve();
  await set(dirs.pids, "pids.max", String(limits.maxTasks));
  await set(dirs.memory, "memory.limit_in_bytes", String(limits.maxMemoryBytes));
  // Swap would let a process hold more than its cap; absent where swap accounting is off.
  await set(dirs.memory, "memory.memsw.limit_in_bytes", String(limits.maxMemoryBytes)).catch(
    () => undefined,
  );
  if (limits.maxCpus > 0) {
    await set(dirs.cpu, "cpu.cfs_period_us", "100000");
    await set(dirs.cpu, "cpu.cfs_quota_us", String(Math.round(limits.maxCpus * 100_000)));
  }
  const all = Object.values(dirs);
  const procsFiles = all.map((dir) => path.join(dir, "cgroup.procs"));
  const counted = path.join(dirs.pids ?? all[0] ?? "", "cgroup.procs");
  return {
    procsFiles,
    async usage() {
      const list = readSmall(counted);
      const pids = dirs.pids ? readSmall(path.join(dirs.pids, "pids.events")) : "";
      const oom = dirs.memory ? readSmall(path.join(dirs.memory, "memory.oom_control")) : "";
      return {
        processes: countLines(list),
        pids: pidsIn(list),
        forksRefused: field(pids, "max"),
        oomKills: field(oom, "oom_kill"),
      };
    },
    async killAll(options) {
      if (await allEmpty(procsFiles)) return;
      // Synchronous, like the reads: kernel files, and this runs after most commands (the
      // sandbox's pid 1 is often still exiting), where a thread-pool round trip costs more.
      writeSmall(dirs.freezer, "freezer.state", "FROZEN");
      await killListed(procsFiles);
      writeSmall(dirs.freezer, "freezer.state", "THAWED");
      if (options?.wait !== false) await untilEmpty(procsFiles);
    },
    remove: () => removeDirs(all, procsFiles),
  };
}

/** SIGKILL to every process listed; a stopped or frozen process dies as soon as it runs. */
async function killListed(procsFiles: string[]): Promise<void> {
  for (const file of procsFiles) {
    for (const pid of readSmall(file).split("\n")) {
      const id = Number(pid);
      if (id > 0 && id !== process.pid) {
        try {
          process.kill(id, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
  }
}

/** Kills until the groups are empty: a process forked between the read and the kill is next. */
async function untilEmpty(procsFiles: string[]): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await allEmpty(procsFiles)) return;
    await killListed(procsFiles);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function allEmpty(procsFiles: string[]): Promise<boolean> {
  return procsFiles.every((file) => countLines(readSmall(file)) === 0);
}

async function removeDirs(dirs: string[], procsFiles: string[]): Promise<void> {
  // The group empties as the kernel reaps the last killed processes: retry briefly.
  for (const dir of dirs) {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch {
        await killListed(procsFiles);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }
}

/**
 * Groups left by a nightshift process that died mid-command (killed, crashed): empty once the
 * kernel reaped their processes, and removable then. Groups of live processes are left alone.
 */
async function sweepStale(root: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const pid = Number(/^nightshift-(?:host-)?(\d+)(?:-\d+)?$/.exec(name)?.[1]);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    await rmdir(path.join(root, name)).catch(() => undefined);
  }
}

/** Whether a process lives (EPERM: alive, but another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function writableDir(dir: string): Promise<boolean> {
  const probe = path.join(dir, `nightshift-probe-${process.pid}-${counter++}`);
  try {
    await mkdir(probe);
    await rmdir(probe);
    return true;
  } catch {
    return false;
  }
}

async function readWords(file: string): Promise<string[]> {
  return (await readFile(file, "utf8").catch(() => "")).split(/\s+/).filter(Boolean);
}

/**
 * A cgroup file: generated by the kernel in memory, so read synchronously (a thread-pool round
 * trip per file costs more than the read, and a busy host makes it worse).
 */
function readSmall(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** Writes a cgroup file synchronously; false when it could not (absent controller, old kernel). */
function writeSmall(dir: string | undefined, file: string, value: string): boolean {
  if (!dir) return false;
  try {
    writeFileSync(path.join(dir, file), value);
    return true;
  } catch {
    return false;
  }
}

function pidsIn(text: string): number[] {
  return text
    .split("\n")
    .map(Number)
    .filter((pid) => pid > 0);
}

function countLines(text: string): number {
  return text.split("\n").filter((line) => line.trim() !== "").length;
}

/** `name N` from a flat-keyed cgroup file (pids.events, memory.events, memory.oom_control). */
function field(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}
