import { realpathSync, statSync } from "node:fs";
import { realpath } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type CgroupDetection, type CommandCgroup, detectCgroups } from "./cgroup.ts";
import { CgroupPool } from "./cgroup-pool.ts";
import { scrubbedEnv } from "./env.ts";
import { SandboxError } from "./errors.ts";
import { findProgram } from "./find-program.ts";
import { GatewayRelay, gatewayAddress } from "./gateway-relay.ts";
import { type GitLayout, gitLayout } from "./git-layout.ts";
import { LimitWatch } from "./limit-watch.ts";
import { bwrapArgs, GATEWAY_SOCKET_PATH, RELAY_PATH, SANDBOX_HOME } from "./mount-plan.ts";
import { describeNetAttempts } from "./net-counters.ts";
import { NetworkHolder, networkJoiner } from "./network-holder.ts";
import { notStarted, supervision } from "./run-command.ts";
import { endingNote, superviseProcess } from "./supervise.ts";
import {
  DEFAULT_LIMITS,
  type ExecOptions,
  type ExecResult,
  type RunSandbox,
  type SandboxBackend,
  type SandboxLimits,
  type SandboxLimitsNote,
  type SandboxSpec,
  type SandboxViolation,
} from "./types.ts";
import { OutputScanner, onePerKind, probesInCommand } from "./violations.ts";
import { restoreWorkspace, walkWorkspace } from "./workspace-snapshot.ts";

export const BWRAP_INSTALL_HINT =
  "install bubblewrap: `sudo apt-get install bubblewrap` (Debian/Ubuntu), `sudo dnf install bubblewrap` (Fedora); or choose another [sandbox] backend in nightshift.toml";

/**
 * The cgroup counts threads as well as processes; node and test runners start several threads
 * each, so the kernel's cap is this multiple of the process limit the host's watch enforces.
 */
const TASKS_PER_PROCESS = 4;

const RELAY_FILE = fileURLToPath(new URL("./relay.mjs", import.meta.url));

/**
 * Where a command cannot join the run's network holder: bash starts the relay in the command's
 * own sandbox, waits for its "ready" line, and becomes the command. The relay is a sibling, not
 * the command's parent: killing it takes away the gateway and nothing else, and bwrap's exit
 * status is the command's. Arguments: node, the relay's script, port, socket, the command.
 */
const OWN_RELAY_SCRIPT = [
  'exec 3< <(exec "$1" "$2" "$3" "$4" 2>&1)',
  "read -r ready <&3",
  "exec 3<&-",
  'if [ "$ready" != ready ]; then echo "nightshift sandbox: the gateway relay did not start: $ready" >&2; exit 126; fi',
  'exec /bin/bash -c "$5"',
].join("\n");

/**
 * The node_modules that holds nightshift's own dependencies, read-only in every sandbox: test
 * commands may load its tsx loader by absolute path (the demo's do).
 */
function nightshiftModules(): string[] {
  try {
    const tsx = createRequire(import.meta.url).resolve("tsx/package.json");
    return [path.dirname(path.dirname(tsx))];
  } catch {
    return [];
  }
}

export interface BubblewrapOptions {
  /** The bwrap program; default: found on PATH. */
  bwrapPath?: string;
  limits?: Partial<SandboxLimits>;
  /** Host paths every sandbox of this backend may read (read-only, same place). */
  readOnlyPaths?: string[];
  /**
   * How gateway-reaching commands get their relay: "per-run" (default where this process may
   * join another network namespace, i.e. has CAP_SYS_ADMIN: one network holder per run, commands
   * join it) or "per-command" (each such command starts its own relay; the default elsewhere).
   */
  relay?: "per-run" | "per-command";
}

/** Linux namespaces through bubblewrap: the default backend. See docs/sandbox.md. */
export class BubblewrapBackend implements SandboxBackend {
  readonly name = "bubblewrap" as const;
  readonly bwrapPath: string;
  private cgroupsFound: Promise<CgroupDetection> | undefined;

  constructor(private readonly options: BubblewrapOptions = {}) {
    const found = options.bwrapPath
      ? findProgram(path.basename(options.bwrapPath), path.dirname(options.bwrapPath))
      : findProgram("bwrap");
    if (!found) {
      throw new SandboxError(
        "backend_missing",
        "bubblewrap (bwrap) is not installed",
        BWRAP_INSTALL_HINT,
      );
    }
    this.bwrapPath = found;
  }

  /** Which limits the kernel enforces from outside on this host (for doctor and the run log). */
  async limitsNote(): Promise<SandboxLimitsNote> {
    this.cgroupsFound ??= detectCgroups();
    return noteFor(await this.cgroupsFound, this.joiner());
  }

  /** nsenter when commands may join a run's network holder; null when each starts its relay. */
  private joiner(): string | null {
    return this.options.relay === "per-command" ? null : networkJoiner();
  }

  async create(spec: SandboxSpec): Promise<RunSandbox> {
    const workspace = await realpath(spec.workspacePath).catch(() => {
      throw new SandboxError(
        "invalid_sandbox_spec",
        `the workspace ${spec.workspacePath} does not exist`,
        "create the run's worktree before its sandbox",
      );
    });
    const git = await gitLayout(workspace);
    this.cgroupsFound ??= detectCgroups();
    const cgroups = await this.cgroupsFound;
    const target = spec.gateway ? gatewayAddress(spec.gateway.url) : undefined;
    const relay = target ? await GatewayRelay.start(target) : undefined;
    const sandbox = new BubblewrapSandbox(this.bwrapPath, workspace, git, cgroups, spec, {
      relay,
      joiner: relay ? this.joiner() : null,
      limits: { ...DEFAULT_LIMITS, ...this.options.limits, ...spec.limits },
      readOnly: [
        ...nightshiftModules(),
        ...repositoryModules(git),
        ...(this.options.readOnlyPaths ?? []),
        ...(spec.readOnlyPaths ?? []),
      ],
    });
    if (relay && sandbox.joinsNetworkHolder) {
      // Listening before the first command: a relay that cannot start fails the run's set-up.
      await sandbox.networkHolder().catch(async (error) => {
        await sandbox.dispose();
        throw error;
      });
    }
    spec.onEvent?.({ kind: "limits", note: sandbox.limitsNote });
    return sandbox;
  }
}

const LIMIT_NAMES = { pids: "processes", memory: "memory", cpu: "cpu" } as const;

function noteFor(cgroups: CgroupDetection, joiner: string | null): SandboxLimitsNote {
  // RLIMIT_CPU and RLIMIT_FSIZE are set by the launcher outside the sandbox on every host.
  const always = ["cpu seconds per process", "file size", "disk (watched from the host)"];
  const relay = joiner
    ? "one per run (commands join its network namespace)"
    : "one per command (this process cannot join another network namespace: no CAP_SYS_ADMIN or no nsenter), a node start per command that may reach the gateway";
  if (!cgroups.host) {
    return {
      enforced: always,
      missing: `processes, memory and cpu are not capped by the kernel: ${cgroups.missing}`,
      relay,
    };
  }
  return {
    enforced: [...cgroups.host.enforced.map((c) => LIMIT_NAMES[c]), ...always],
    missing: cgroups.host.missing,
    relay,
  };
}

/** The repository's own node_modules (next to its .git): tools resolve it from the worktree. */
function repositoryModules(git: GitLayout | undefined): string[] {
  if (!git || path.basename(git.commonDir) !== ".git") return [];
  return [path.join(path.dirname(git.commonDir), "node_modules")];
}

/** A word for sh -c, quoted unless plainly safe. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The run's network holder was gone when a command tried to join it. */
class HolderGone extends Error {}

const LIMIT_KIND = {
  processes: "process_limit",
  memory: "memory_limit",
  disk: "disk_limit",
} as const;

class BubblewrapSandbox implements RunSandbox {
  readonly backend = "bubblewrap" as const;
  readonly gatewayEnv: Record<string, string>;
  readonly kernelProcessLimit: boolean;
  readonly limitsNote: SandboxLimitsNote;
  private disposed = false;
  private readonly cgroupPool: CgroupPool | undefined;
  private readonly relay: GatewayRelay | undefined;
  /** nsenter, when gateway-reaching commands join the run's network holder. */
  private readonly joiner: string | null;
  /** The run's network holder (started at the first command that needs it, restarted if it died). */
  private holder: Promise<NetworkHolder> | undefined;

  constructor(
    private readonly bwrap: string,
    readonly workspacePath: string,
    private readonly git: GitLayout | undefined,
    cgroups: CgroupDetection,
    private readonly spec: SandboxSpec,
    private readonly settings: {
      relay: GatewayRelay | undefined;
      joiner: string | null;
      limits: SandboxLimits;
      readOnly: string[];
    },
  ) {
    this.relay = settings.relay;
    this.joiner = settings.joiner;
    this.kernelProcessLimit = cgroups.host?.enforced.includes("pids") ?? false;
    this.limitsNote = noteFor(cgroups, this.joiner);
    const { limits } = settings;
    this.cgroupPool =
      cgroups.host &&
      new CgroupPool(cgroups.host, {
        maxTasks: limits.maxProcesses * TASKS_PER_PROCESS,
        maxMemoryBytes: limits.maxMemoryBytes,
        maxCpus: limits.maxCpus,
      });
    this.gatewayEnv = spec.gateway
      ? { NIGHTSHIFT_GATEWAY_URL: spec.gateway.url, NIGHTSHIFT_API_KEY: spec.gateway.apiKey }
      : {};
  }

  get joinsNetworkHolder(): boolean {
    return this.joiner !== null;
  }

  async exec(options: ExecOptions): Promise<ExecResult> {
    // The holder can die between the check and the join (killed from the host just then): the
    // command never started; once, it gets a new holder.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.execOnce(options);
      } catch (error) {
        if (!(error instanceof HolderGone)) throw error;
        if (attempt < 2) continue;
      }
      throw new SandboxError(
        "command_could_not_start",
        "the run's gateway relay (its network holder) died twice as the command started",
        "something on the host is killing nightshift's relay processes (nightshift-relay); stop it and run again",
      );
    }
  }

  private async execOnce(options: ExecOptions): Promise<ExecResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    if (this.disposed) {
      throw new SandboxError(
        "command_could_not_start",
        "the run's sandbox was already disposed",
        "create a new sandbox for the run",
      );
    }
    const cwd = this.insideWorkspace(options.cwd ?? this.workspacePath);
    if (options.signal?.aborted) return { ...notStarted(elapsed()), violations: [] };
    const { limits } = this.settings;
    const separateStderr = options.onStderr !== undefined;
    const gatewayPort =
      this.relay && this.spec.gateway && options.reachGateway !== false
        ? gatewayAddress(this.spec.gateway.url).port
        : undefined;
    const holder =
      gatewayPort !== undefined && this.joiner ? await this.networkHolder() : undefined;
    const ownRelay = gatewayPort !== undefined && !holder;
    const args = bwrapArgs({
      workspace: this.workspacePath,
      git: this.git,
      readOnly: [...this.settings.readOnly, ...(options.readOnlyPaths ?? [])],
      writable: options.writablePaths ?? [],
      gatewaySocket: ownRelay ? this.relay?.socketPath : undefined,
      relayFile: ownRelay ? RELAY_FILE : undefined,
      network: holder ? "shared" : "own",
      limits,
      cwd,
    });
    const env = scrubbedEnv({
      HOME: SANDBOX_HOME,
      TMPDIR: "/tmp",
      USER: "nightshift",
      ...(gatewayPort !== undefined ? this.gatewayEnv : {}),
      ...options.env,
    });
    // Nothing but the command runs inside, except where it must start its own relay.
    const inside = ownRelay
      ? [
          "/bin/bash",
          "-c",
          OWN_RELAY_SCRIPT,
          "nightshift-relay",
          process.execPath,
          RELAY_PATH,
          String(gatewayPort),
          GATEWAY_SOCKET_PATH,
          options.command,
        ]
      : ["/bin/bash", "-c", options.command];
    // A command of the run's network holder joins its namespace from the host, before bwrap.
    const join = holder && this.joiner ? [this.joiner, `--net=${holder.netns}`, "--"] : [];
    // What was there before the command, to undo what it adds if a limit kills it.
    const before = await walkWorkspace(this.workspacePath);
    const cgroup = await this.cgroupPool?.acquire();
    const launch = {
      file: "/bin/sh",
      args: this.launcher(cgroup, separateStderr, [...join, this.bwrap, ...args, "--", ...inside]),
    };
    const named = options.label ?? options.command;
    // Every line of output is scanned as it streams, not only what the capped capture keeps.
    const outScanner = new OutputScanner(named);
    const errScanner = new OutputScanner(named);
    const { onOutput, onStderr } = options;
    let stopGroup = () => {};
    const watch = new LimitWatch(
      cgroup,
      this.workspacePath,
      limits,
      Math.max(limits.maxWorkspaceBytes, before.bytes),
      () => stopGroup(),
      holder?.pid,
    );
    const ending = await superviseProcess(
      {
        ...launch,
        cwd: this.workspacePath,
        env,
        captureStderr: true,
        onSpawn: (pid) => {
          stopGroup = () => {
            try {
              process.kill(-pid, "SIGKILL");
            } catch {}
          };
        },
      },
      {
        ...supervision({ ...options, cwd }),
        onOutput: (chunk) => {
          outScanner.write(chunk);
          onOutput?.(chunk);
        },
        // bwrap's own set-up errors come on stderr; with onStderr, the command's stderr too.
        onStderr: (chunk) => {
          errScanner.write(chunk);
          (onStderr ?? onOutput)?.(chunk);
        },
      },
    ).finally(async () => {
      // Leftovers the command backgrounded (or hid from bwrap) end with it: remove() kills them,
      // before the watch's last disk check, so that none of them writes after it.
      await cgroup?.remove();
      await watch.stop();
    });
    if (ending.kind === "spawn_error") {
      throw new SandboxError(
        "backend_missing",
        `could not start bubblewrap (${this.bwrap}): ${ending.error.message}`,
        BWRAP_INSTALL_HINT,
        { cause: ending.error },
      );
    }
    const limitHit = watch.hits[0];
    if (!limitHit && !ending.timedOut && !ending.aborted) {
      const setupError = /^(bwrap|nsenter): .*$/m.exec(ending.output)?.[0];
      if (setupError?.startsWith("nsenter:") && holder && !holder.alive) throw new HolderGone();
      if (setupError) {
        throw new SandboxError(
          "backend_unavailable",
          `bubblewrap could not create the sandbox: ${setupError}`,
          "bubblewrap needs user namespaces (sysctl kernel.unprivileged_userns_clone=1, or run as root); run `nightshift run` again after fixing, or see docs/sandbox.md",
        );
      }
    }
    const probes =
      options.scanCommandText === false
        ? []
        : probesInCommand(options.command, {
            cwd,
            workspace: this.workspacePath,
            guarded: this.guarded(),
            readable: [...this.settings.readOnly, ...(this.git ? [this.git.commonDir] : [])],
          });
    const refused = describeNetAttempts(watch.net);
    const violations: SandboxViolation[] = onePerKind([
      ...probes,
      ...(refused ? [{ kind: "network_blocked" as const, detail: refused, command: named }] : []),
      ...(limitHit
        ? [{ kind: LIMIT_KIND[limitHit.limit], detail: limitHit.detail, command: named }]
        : []),
      ...outScanner.end(),
      ...errScanner.end(),
    ]);
    let note = limitHit
      ? `\n[nightshift sandbox: ${limitHit.detail}; every process of the command was killed]\n`
      : "";
    if (violations.some((v) => v.kind === "disk_limit")) {
      // Nothing of a command killed for disk stays behind: the workspace is as it was before.
      const undone = await restoreWorkspace(this.workspacePath, before);
      if (undone.length > 0) {
        note += `[nightshift sandbox: removed what the command added over the disk cap: ${undone.slice(0, 10).join(", ")}${undone.length > 10 ? ", …" : ""}]\n`;
      }
    }
    if (ending.timedOut) {
      violations.push({
        kind: "timeout",
        detail: `timed out after ${options.timeoutMs} ms`,
        command: named,
      });
    }
    for (const violation of violations) this.spec.onEvent?.({ kind: "violation", violation });
    const exited = ending;
    return {
      exitCode: exited.code,
      signal: exited.signal,
      output: exited.output + note + endingNote(exited, options.timeoutMs),
      timedOut: exited.timedOut,
      aborted: exited.aborted,
      durationMs: elapsed(),
      violations,
    };
  }

  /**
   * The host-side launcher: it joins the command's cgroup and sets the rlimits (CPU seconds, file
   * size, no core dumps; hard limits, which nothing inside may raise) before it becomes bwrap, so
   * that nothing of the sandbox ever runs outside them.
   */
  private launcher(
    cgroup: CommandCgroup | undefined,
    separateStderr: boolean,
    command: string[],
  ): string[] {
    const { limits } = this.settings;
    const lines = [
      ...(cgroup?.procsFiles ?? []).map((file) => `echo $$ > ${shellWord(file)}`),
      "ulimit -c 0",
      `ulimit -t ${limits.cpuSeconds}`,
      // dash counts file size in 512-byte blocks.
      `ulimit -f ${Math.max(1, Math.floor(limits.maxWorkspaceBytes / 512))}`,
      ...(separateStderr ? [] : ["exec 2>&1"]),
      'exec "$@"',
    ];
    return ["-c", lines.join(" && "), "nightshift-launcher", ...command];
  }

  /**
   * The run's network holder, started once and waited for until its relay listens; a holder that
   * died (killed from the host: nothing inside a command can reach it) is replaced by a new one.
   */
  async networkHolder(): Promise<NetworkHolder> {
    const pending = this.holder;
    const current = await pending?.catch(() => undefined);
    if (current?.alive) return current;
    // Another command restarted it while this one waited.
    if (this.holder !== pending) return this.networkHolder();
    const relay = this.relay;
    const gateway = this.spec.gateway;
    if (!relay || !gateway) throw new Error("a network holder needs the run's gateway");
    this.holder = NetworkHolder.start({
      bwrap: this.bwrap,
      relayFile: RELAY_FILE,
      gatewaySocket: relay.socketPath,
      port: gatewayAddress(gateway.url).port,
    });
    return this.holder;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const holder = await this.holder?.catch(() => undefined);
    await holder?.stop();
    await this.relay?.close();
    await this.cgroupPool?.dispose();
  }

  /** Host places a command has no business naming: the repository around the worktree, homes. */
  private guarded(): string[] {
    const repoTop =
      this.git && path.basename(this.git.commonDir) === ".git"
        ? [path.dirname(this.git.commonDir)]
        : [path.dirname(this.workspacePath)];
    return [...repoTop, os.homedir(), "/root"].filter((dir) => dir !== "/");
  }

  /**
   * Synchronous on purpose: two syscalls on a path, far cheaper than two thread-pool round trips
   * on a busy host (they showed as ~1-4 ms per command under load).
   */
  private insideWorkspace(cwd: string): string {
    let real: string | undefined;
    try {
      real = statSync(cwd).isDirectory() ? realpathSync(cwd) : undefined;
    } catch {}
    if (!real) {
      throw new SandboxError(
        "command_could_not_start",
        `working directory ${cwd} is not a directory`,
        "the directory was removed before the command ran; check workspace release and pruning",
      );
    }
    if (real !== this.workspacePath && !real.startsWith(this.workspacePath + path.sep)) {
      throw new SandboxError(
        "invalid_sandbox_spec",
        `the working directory ${cwd} is outside the run's workspace ${this.workspacePath}`,
        "run commands in the workspace or a folder inside it",
      );
    }
    return real;
  }
}
