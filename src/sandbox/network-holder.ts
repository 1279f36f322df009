import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import type { Readable } from "node:stream";
import { SandboxError } from "./errors.ts";
import { findProgram } from "./find-program.ts";
import { GATEWAY_SOCKET_PATH, holderArgs, RELAY_PATH } from "./mount-plan.ts";

/** CAP_SYS_ADMIN's bit in /proc/<pid>/status CapEff: setns(2) into another network namespace. */
const CAP_SYS_ADMIN = 21n;

let joinProgram: string | null | undefined;

/**
 * nsenter, when this process may make a command join another network namespace (setns needs
 * CAP_SYS_ADMIN: root, as on the development machine); null otherwise. Checked once per process.
 */
export function networkJoiner(): string | null {
  if (joinProgram !== undefined) return joinProgram;
  let capable = false;
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    capable = effective !== undefined && ((BigInt(`0x${effective}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
  } catch {}
  joinProgram = capable ? (findProgram("nsenter") ?? null) : null;
  return joinProgram;
}

/**
 * One per run sandbox that has a gateway: a long-lived bwrap of its own whose only process runs
 * the gateway relay (relay.mjs) on 127.0.0.1:<gateway port> in a new network namespace. The run's
 * gateway-reaching commands join that namespace from the host (nsenter --net), so none of them
 * starts a node process, and none can signal the relay (it is in a pid namespace of its own).
 */
export class NetworkHolder {
  private exited = false;
  private readonly closed: Promise<void>;
  /** The namespace's identity ("net:[inode]"), so that a reused pid is not taken for the holder. */
  private readonly namespace: string;

  private constructor(
    private readonly child: ChildProcess,
    /** The host pid of the holder's pid 1, a process inside its network namespace. */
    readonly pid: number,
  ) {
    // 'close' comes once every process holding the holder's stdout has ended: bwrap, its pid 1
    // and the relay. That is the event dispose waits for.
    this.closed = new Promise((resolve) => child.once("close", () => resolve()));
    this.namespace = quietReadlink(this.netns);
    child.once("exit", () => {
      this.exited = true;
    });
  }

  /** The network namespace the run's commands join. */
  get netns(): string {
    return `/proc/${this.pid}/ns/net`;
  }

  /**
   * False once the holder ended (killed from the host, or its relay died). The namespace is
   * looked at too: the exit event may not have arrived yet when its pid 1 was just killed.
   */
  get alive(): boolean {
    return !this.exited && this.namespace !== "" && quietReadlink(this.netns) === this.namespace;
  }

  static async start(input: {
    bwrap: string;
    relayFile: string;
    gatewaySocket: string;
    port: number;
  }): Promise<NetworkHolder> {
    const child = spawn(
      input.bwrap,
      [
        ...holderArgs(input),
        "--info-fd",
        "3",
        "--",
        process.execPath,
        RELAY_PATH,
        String(input.port),
        GATEWAY_SOCKET_PATH,
      ],
      {
        env: { PATH: "/usr/bin:/bin" },
        // Its own process group: the host kills it without touching nightshift's.
        detached: true,
        stdio: ["ignore", "pipe", "pipe", "pipe"],
      },
    );
    const failed = (detail: string, cause?: unknown) =>
      new SandboxError(
        "backend_unavailable",
        `the sandbox's gateway relay could not start: ${detail}`,
        "bubblewrap must be able to create namespaces here (see docs/sandbox.md); run `nightshift doctor`",
        { cause },
      );
    const info = childPid(child.stdio[3] as Readable);
    const errors = readAll(child.stderr as Readable);
    const ready = firstLine(child.stdout as Readable);
    const spawned = new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    try {
      await spawned;
    } catch (error) {
      throw failed(`${input.bwrap}: ${(error as Error).message}`, error);
    }
    const line = await ready;
    if (line !== "ready") {
      child.kill("SIGKILL");
      throw failed(line || (await errors).trim() || "it exited before listening");
    }
    const pid = await info;
    if (!pid) {
      child.kill("SIGKILL");
      throw failed("bwrap did not say the pid of the sandbox");
    }
    child.stdout?.resume();
    child.stderr?.resume();
    // The host must not wait for the holder to end before it may exit.
    child.unref();
    for (const stream of [child.stdout, child.stderr, child.stdio[3]]) {
      (stream as (Readable & { unref?: () => void }) | null)?.unref?.();
    }
    return new NetworkHolder(child, pid);
  }

  /**
   * Kills the holder and waits until none of its processes is left: bwrap dies by SIGKILL, its
   * pid 1 by --die-with-parent, and the relay with its pid namespace.
   */
  async stop(): Promise<void> {
    if (!this.exited) {
      try {
        process.kill(-(this.child.pid ?? 0), "SIGKILL");
      } catch {}
      this.child.kill("SIGKILL");
    }
    await this.closed;
  }
}

function quietReadlink(file: string): string {
  try {
    return readlinkSync(file);
  } catch {
    return "";
  }
}

function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => {
    stream.once("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

/** The host pid of bwrap's pid 1, from its --info-fd JSON (which may stay open: not waited on). */
function childPid(stream: Readable): Promise<number | undefined> {
  let text = "";
  return new Promise((resolve) => {
    stream.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const pid = /"child-pid":\s*(\d+)/.exec(text)?.[1];
      if (pid) resolve(Number(pid));
    });
    stream.once("close", () => resolve(undefined));
  });
}

/** The first line the stream gives, or what it gave before it ended. */
function firstLine(stream: Readable): Promise<string> {
  let text = "";
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const end = text.indexOf("\n");
      if (end >= 0) {
        stream.off("data", onData);
        stream.pause();
        resolve(text.slice(0, end).trim());
      }
    };
    stream.on("data", onData);
    stream.once("close", () => resolve(text.trim()));
  });
}
