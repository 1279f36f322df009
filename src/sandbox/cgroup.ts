import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * A kernel limit on the tasks (processes and threads) of one sandboxed command: a pids cgroup.
 * The supervisor inside the sandbox counts processes too, but a fork bomb outruns any poller; only
 * the kernel refusing fork() bounds it. RLIMIT_NPROC does not serve: it counts per user across the
 * host, and uid 0 is exempt from it.
 *
 * cgroup v1 (a `pids` hierarchy) and v2 (the unified hierarchy with the pids controller delegated)
 * are supported; where neither is writable `available()` says why, and the self-test refuses to
 * start the line unless the operator lowers expectations explicitly (docs/sandbox.md).
 */
export interface PidsCgroup {
  /** Write a pid here to put that process (and its future children) into the group. */
  readonly procsFile: string;
  remove(): Promise<void>;
}

let counter = 0;

export async function pidsRoot(): Promise<string | undefined> {
  const root = await findPidsRoot();
  if (root) await sweepStale(root);
  return root;
}

/**
 * Groups left by a nightshift process that died mid-command (killed, crashed): empty once the
 * kernel reaped their processes, and removable then. Groups of live processes are left alone.
 */
async function sweepStale(root: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const pid = Number(/^nightshift-(\d+)-\d+$/.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    await rmdir(path.join(root, name)).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function findPidsRoot(): Promise<string | undefined> {
  const v1 = "/sys/fs/cgroup/pids";
  if (await writableDir(v1)) return v1;
  const own = /^0::(.*)$/m.exec(await readFile("/proc/self/cgroup", "utf8").catch(() => ""))?.[1];
  for (const base of ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]) {
    const controllers = await readFile(path.join(base, "cgroup.controllers"), "utf8").catch(
      () => "",
    );
    if (!controllers.split(/\s+/).includes("pids")) continue;
    const dir = path.join(base, own ?? "/");
    const subtree = await readFile(path.join(dir, "cgroup.subtree_control"), "utf8").catch(
      () => "",
    );
    if (subtree.split(/\s+/).includes("pids") && (await writableDir(dir))) return dir;
  }
  return undefined;
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

export async function createPidsCgroup(root: string, maxTasks: number): Promise<PidsCgroup> {
  const dir = path.join(root, `nightshift-${process.pid}-${counter++}`);
  await mkdir(dir);
  await writeFile(path.join(dir, "pids.max"), String(maxTasks));
  return {
    procsFile: path.join(dir, "cgroup.procs"),
    async remove() {
      // The group empties as the kernel reaps the last killed processes: retry briefly.
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          await rmdir(dir);
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    },
  };
}
