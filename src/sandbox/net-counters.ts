import { readFileSync, readlinkSync } from "node:fs";

/** Failed network attempts inside one sandbox, as its network namespace's kernel counted them. */
export interface NetAttempts {
  /** TCP connections refused (a port where nothing listens: every port but the gateway's). */
  refusedConnections: number;
  /** UDP datagrams sent to a port where nothing listens. */
  refusedDatagrams: number;
  /** Packets to an address the sandbox has no route to (anything off loopback). */
  unroutable: number;
}

let ownNamespace: string | undefined;

function quietly(read: () => string): string {
  try {
    return read();
  } catch {
    return "";
  }
}

/** What the counters show, as a violation's evidence; undefined when they show nothing. */
export function describeNetAttempts(net: NetAttempts | undefined): string | undefined {
  if (!net) return undefined;
  const parts = [
    net.refusedConnections > 0 &&
      `${net.refusedConnections} TCP connection(s) to a local port that is not the gateway`,
    net.refusedDatagrams > 0 && `${net.refusedDatagrams} UDP datagram(s) to a closed local port`,
    net.unroutable > 0 && `${net.unroutable} packet(s) to an address off loopback`,
  ].filter(Boolean);
  return parts.length > 0
    ? `the sandbox's network namespace refused ${parts.join(", ")} (kernel counters, read from the host)`
    : undefined;
}

/**
 * Reads the counters of the sandbox's network namespace from the host, through a process in it
 * (/proc/<pid>/net/snmp shows the namespace of that pid). The namespace is new for each command,
 * so its counters start at zero, and nothing inside can reset them. Quiet attempts (errors sent to
 * /dev/null) are counted too. Returns undefined when no process of the list is in a namespace of
 * its own (the launcher has not become bwrap yet, or the command ended).
 */
export function readNetAttempts(pids: number[]): NetAttempts | undefined {
  ownNamespace ??= quietly(() => readlinkSync("/proc/self/ns/net"));
  for (const pid of pids) {
    const ns = quietly(() => readlinkSync(`/proc/${pid}/ns/net`));
    if (!ns || ns === ownNamespace) continue;
    // Kernel-generated in memory: read synchronously, like the cgroup files.
    const snmp = quietly(() => readFileSync(`/proc/${pid}/net/snmp`, "utf8"));
    if (!snmp) continue;
    return {
      refusedConnections: counter(snmp, "Tcp", "AttemptFails"),
      refusedDatagrams: counter(snmp, "Udp", "NoPorts"),
      unroutable: counter(snmp, "Ip", "OutNoRoutes"),
    };
  }
  return undefined;
}

/** One counter of /proc/net/snmp: a header line of names, then a line of values, per protocol. */
function counter(snmp: string, protocol: string, name: string): number {
  const lines = snmp.split("\n").filter((line) => line.startsWith(`${protocol}:`));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const at = names.indexOf(name);
  return at > 0 ? Number(values[at] ?? 0) : 0;
}
