import type { CommandCgroup } from "./cgroup.ts";
import { type NetAttempts, readNetAttempts } from "./net-counters.ts";
import type { SandboxLimits } from "./types.ts";
import { walkWorkspace } from "./workspace-snapshot.ts";

export type LimitName = "processes" | "memory" | "disk";

export interface LimitHit {
  limit: LimitName;
  detail: string;
}

/** How often the cgroup's counters are read: a fork bomb fills pids.max in milliseconds. */
const CGROUP_POLL_MS = 25;
/** Disk walks: at least this far apart, and never more than a fifth of the time spent walking. */
const DISK_POLL_MS = 100;

const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;

/**
 * Watches one sandboxed command from the host, where nothing the command does can stop it:
 * the kernel's counters of its cgroup (processes, refused forks, OOM kills) and the disk its
 * workspace uses. Over a limit it kills every process of the cgroup at once and says which limit.
 * The kernel already bounds processes (pids.max) and memory (memory.max) by itself; the watch
 * makes a hit end the whole command and leaves a record, and it is the only cap on the workspace
 * as a whole (one file is capped by RLIMIT_FSIZE, set outside the sandbox too).
 */
export class LimitWatch {
  readonly hits: LimitHit[] = [];
  /**
   * The last reading of the sandbox's network counters: of the command's own namespace (which
   * dies with it), or of the run's shared one since the command started.
   */
  net: NetAttempts | undefined;
  private readonly netBaseline: NetAttempts | undefined;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private killing: Promise<void> = Promise.resolve();

  constructor(
    private readonly cgroup: CommandCgroup | undefined,
    private readonly workspace: string,
    private readonly limits: SandboxLimits,
    /** Disk already used when the command started; over the cap, it may not grow. */
    private readonly allowedBytes: number,
    /** Ends the command where there is no cgroup to kill (its process group, from the host). */
    private readonly killWithoutCgroup: () => void,
    /**
     * A process of the run's network holder, when the command joins that shared namespace: its
     * counters are read through it, relative to their values now (commands of the run running at
     * the same time count in each other's figures).
     */
    private readonly sharedNetPid?: number,
  ) {
    if (sharedNetPid !== undefined) this.netBaseline = readNetAttempts([sharedNetPid]);
    if (cgroup) this.schedule(() => this.checkCgroup(), CGROUP_POLL_MS);
    this.schedule(() => this.checkDisk(), DISK_POLL_MS);
  }

  /** Stops watching; one last disk check unless a limit already ended the command. */
  async stop(): Promise<void> {
    if (this.stopped) return this.killing;
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    if (this.hits.length === 0) await this.checkDisk(true);
    // The shared namespace outlives the command: one last reading sees its very last attempts.
    this.readSharedNet();
    await this.killing;
  }

  private schedule(check: () => Promise<number | undefined>, delayMs: number): void {
    if (this.stopped || this.hits.length > 0) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void check().then((next) => {
        if (next !== undefined) this.schedule(check, next);
      });
    }, delayMs);
    this.timers.add(timer);
  }

  private async checkCgroup(): Promise<number | undefined> {
    if (!this.cgroup || this.stopped) return undefined;
    const usage = await this.cgroup.usage();
    if (this.sharedNetPid === undefined) this.net = readNetAttempts(usage.pids) ?? this.net;
    else this.readSharedNet();
    // The launcher and bwrap's own two processes are in the group too.
    if (usage.processes > this.limits.maxProcesses + 3 || usage.forksRefused > 0) {
      this.hit("processes", `more than ${this.limits.maxProcesses} processes at once`);
    } else if (usage.oomKills > 0) {
      this.hit(
        "memory",
        `the processes use more than ${mib(this.limits.maxMemoryBytes)} of memory`,
      );
    }
    return CGROUP_POLL_MS;
  }

  private readSharedNet(): void {
    if (this.sharedNetPid === undefined || !this.netBaseline) return;
    const now = readNetAttempts([this.sharedNetPid]);
    if (!now) return;
    const base = this.netBaseline;
    this.net = {
      refusedConnections: now.refusedConnections - base.refusedConnections,
      refusedDatagrams: now.refusedDatagrams - base.refusedDatagrams,
      unroutable: now.unroutable - base.unroutable,
    };
  }

  private async checkDisk(last = false): Promise<number | undefined> {
    if (this.stopped && !last) return undefined;
    const started = performance.now();
    const { bytes } = await walkWorkspace(this.workspace, this.allowedBytes + 1);
    if (bytes > this.allowedBytes) {
      this.hit(
        "disk",
        `the workspace uses more than its ${mib(this.limits.maxWorkspaceBytes)} of disk`,
      );
    }
    return Math.max(DISK_POLL_MS, 5 * (performance.now() - started));
  }

  private hit(limit: LimitName, detail: string): void {
    if (this.hits.length > 0) return;
    this.hits.push({ limit, detail });
    for (const timer of this.timers) clearTimeout(timer);
    if (this.cgroup) this.killing = this.cgroup.killAll();
    else this.killWithoutCgroup();
  }
}
