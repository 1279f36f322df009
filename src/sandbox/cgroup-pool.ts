import type { CgroupHost, CgroupLimits, CgroupUsage, CommandCgroup } from "./cgroup.ts";

/**
 * The cgroups of one run's sandbox: made once with the run's limits and reused by its commands
 * one after another (a command holds one for its life, so commands running at once never share
 * one). Making and removing groups in four v1 hierarchies costs milliseconds a command need not
 * pay. The kernel's counters are cumulative, so each command sees them from where it started.
 */
export class CgroupPool {
  private readonly idle: CommandCgroup[] = [];
  private readonly all = new Set<CommandCgroup>();
  /** Groups whose last processes are still dying, on their way back to `idle` (or removal). */
  private readonly settling = new Set<Promise<void>>();
  private disposed = false;

  constructor(
    private readonly host: CgroupHost,
    private readonly limits: CgroupLimits,
  ) {}

  async acquire(): Promise<CommandCgroup> {
    let group = this.idle.pop();
    if (!group) {
      group = await this.host.create(this.limits);
      this.all.add(group);
    }
    const held = group;
    const start = await held.usage();
    let released = false;
    return {
      procsFiles: held.procsFiles,
      usage: async () => since(start, await held.usage()),
      killAll: (options) => held.killAll(options),
      // Every leftover is sent SIGKILL before this returns; waiting for the group to empty (the
      // sandbox's pid 1 is often still tearing its namespaces down, for a few ms) is not the
      // command's time: the group goes back to the pool once it is empty.
      remove: async () => {
        if (released) return;
        released = true;
        await held.killAll({ wait: false });
        const settle = this.settle(held);
        this.settling.add(settle);
        void settle.finally(() => this.settling.delete(settle));
      },
    };
  }

  private async settle(group: CommandCgroup): Promise<void> {
    await group.killAll();
    if (!this.disposed && (await group.usage()).processes === 0) {
      this.idle.push(group);
    } else {
      this.all.delete(group);
      await group.remove();
    }
  }

  /** Removes the idle groups; a group still held is removed when its command releases it. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.all(this.settling);
    for (const group of this.idle.splice(0)) {
      this.all.delete(group);
      await group.remove();
    }
  }
}

function since(start: CgroupUsage, now: CgroupUsage): CgroupUsage {
  return {
    processes: now.processes,
    pids: now.pids,
    forksRefused: now.forksRefused - start.forksRefused,
    oomKills: now.oomKills - start.oomKills,
  };
}
