import os from "node:os";
import type { CommandOptions, CommandResult } from "./run-command.ts";

/** What a run's sandbox is limited to. Every field has a default (see DEFAULT_LIMITS). */
export interface SandboxLimits {
  /** Processes alive at once inside the sandbox (its pid namespace). */
  maxProcesses: number;
  /** Resident memory of all its processes together. */
  maxMemoryBytes: number;
  /** Disk the workspace may occupy; also the largest single file any process may write. */
  maxWorkspaceBytes: number;
  /** CPU seconds per process (RLIMIT_CPU). */
  cpuSeconds: number;
  /** CPU time per wall second, in cores, of all its processes together (cgroup cpu.max). */
  maxCpus: number;
  /** Size of the private /tmp and of the private HOME (each a tmpfs). */
  tmpBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  maxProcesses: 256,
  maxMemoryBytes: 4 * 1024 ** 3,
  maxWorkspaceBytes: 2 * 1024 ** 3,
  cpuSeconds: 900,
  maxCpus: os.availableParallelism(),
  tmpBytes: 512 * 1024 ** 2,
};

export type SandboxViolationKind =
  /** A write to a read-only place (EROFS): the toolchain, .git, the root. */
  | "write_denied"
  /** An access the sandbox's permissions refused (EACCES/EPERM): host home, secrets, parents. */
  | "access_denied"
  /** A connection that only the gateway may make: refused, unreachable, no DNS. */
  | "network_blocked"
  /** A signal to a process outside the sandbox (it is invisible: ESRCH). */
  | "kill_blocked"
  /** A path outside the workspace, refused by a file tool before any I/O. */
  | "path_outside_workspace"
  | "process_limit"
  | "memory_limit"
  | "disk_limit"
  | "cpu_limit"
  | "timeout";

export interface SandboxViolation {
  kind: SandboxViolationKind;
  /** The evidence: the output line, or what the host saw. */
  detail: string;
  /** The command that caused it, when a command did. */
  command?: string;
}

/** Which limits the kernel enforces from outside the sandbox on this host, and which not. */
export interface SandboxLimitsNote {
  /** Limits the kernel holds whatever runs inside: "processes", "memory", "cpu", "file size". */
  enforced: string[];
  /** What is not enforced from outside here, and why; empty when everything is. */
  missing: string;
  /** How the gateway relay runs: one per run, or one per command where joining is not allowed. */
  relay?: string;
}

export type SandboxEvent =
  | { kind: "violation"; violation: SandboxViolation }
  /** Said once per run's sandbox, so the run's record shows what held it. */
  | { kind: "limits"; note: SandboxLimitsNote }
  /** The run is not sandboxed (backend "none"): said loudly, on every run. */
  | { kind: "unsandboxed"; message: string };

export type SandboxEventSink = (event: SandboxEvent) => void;

/** The one run a sandbox is made for. */
export interface SandboxSpec {
  /** The run's git worktree: the only writable place that outlives a command. */
  workspacePath: string;
  /**
   * The gateway as the run sees it: inside the sandbox the same URL works (a forwarder listens
   * on that loopback port and relays to the host's gateway); no other address is reachable.
   */
  gateway?: { url: string; apiKey: string };
  /** Extra host paths visible read-only at the same place (e.g. a toolchain outside /usr). */
  readOnlyPaths?: string[];
  limits?: Partial<SandboxLimits>;
  onEvent?: SandboxEventSink;
}

/** runCommand's options, with cwd optional (default: the workspace) and extra read-only paths. */
export type ExecOptions = Omit<CommandOptions, "cwd"> & {
  cwd?: string;
  /** Host paths this command alone may read (a gate's hidden files); never writable. */
  readOnlyPaths?: string[];
  /**
   * Host paths this command alone may write besides the workspace (an agent CLI's private home).
   * For the caller's own scratch folders only; never a shared or host path.
   */
  writablePaths?: string[];
  /**
   * How recorded violations name this command (default: the command line itself). For a
   * long-lived program such as an agent CLI, whose command line carries a prompt, not a shell
   * command.
   */
  label?: string;
  /**
   * Whether the command's text is searched for reaches at secrets and hidden paths (default
   * true). Off for a program whose arguments are a prompt: the words of a task are not attempts;
   * what the program then runs shows in its output, which is still scanned.
   */
  scanCommandText?: boolean;
  /**
   * Whether the command may reach the gateway (default true when the run has one). Off for
   * commands that never talk to a model themselves (the built-in agent's tool commands: the agent
   * talks to the gateway from the host): they start without the relay, a node process fewer.
   */
  reachGateway?: boolean;
};

export interface ExecResult extends CommandResult {
  /** The blocked attempts this command made (also sent to the spec's onEvent). */
  violations: SandboxViolation[];
}

/** A run's sandbox: run commands in it, then dispose of it. */
export interface RunSandbox {
  readonly backend: SandboxBackendName;
  readonly workspacePath: string;
  /** The environment a command sees for the gateway (URL and scoped key), if any. */
  readonly gatewayEnv: Record<string, string>;
  /** True when the kernel caps the command's processes (a pids cgroup), not only a poller. */
  readonly kernelProcessLimit: boolean;
  /** What the kernel enforces from outside on this host (see SandboxLimitsNote). */
  readonly limitsNote?: SandboxLimitsNote;
  exec(options: ExecOptions): Promise<ExecResult>;
  dispose(): Promise<void>;
}

export type SandboxBackendName = "bubblewrap" | "container" | "none";

export interface SandboxBackend {
  readonly name: SandboxBackendName;
  create(spec: SandboxSpec): Promise<RunSandbox>;
  /** Which limits the kernel enforces from outside on this host (backends that set limits). */
  limitsNote?(): Promise<SandboxLimitsNote>;
}
