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
import { bwrapArgs, GATEWAY_SOCKET_PATH, SANDBOX_HOME, SUPERVISOR_PATH } from "./mount-plan.ts";
import { describeNetAttempts } from "./net-counters.ts";
import { assertDirectory, notStarted, supervision } from "./run-command.ts";
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
import { OutputScanner, onePerKind, parseSupervisorReport, probesInCommand } from "./violations.ts";
import { restoreWorkspace, walkWorkspace } from "./workspace-snapshot.ts";

export const BWRAP_INSTALL_HINT =
  "install bubblewrap: `sudo apt-get install bubblewrap` (Debian/Ubuntu), `sudo dnf install bubblewrap` (Fedora); or choose another [sandbox] backend in nightshift.toml";

/**
 * The cgroup counts threads as well as processes; node and test runners start several threads
 * each, so the kernel's cap is this multiple of the process limit the host's watch enforces.
 */
const TASKS_PER_PROCESS = 4;

const SUPERVISOR_FILE = fileURLToPath(new URL("./supervisor.mjs", import.meta.url));

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
    return noteFor(await this.cgroupsFound);
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
    const sandbox = new BubblewrapSandbox(this.bwrapPath, workspace, git, relay, cgroups, spec, {
      limits: { ...DEFAULT_LIMITS, ...this.options.limits, ...spec.limits },
      readOnly: [
        ...nightshiftModules(),
        ...repositoryModules(git),
        ...(this.options.readOnlyPaths ?? []),
        ...(spec.readOnlyPaths ?? []),
      ],
    });
    spec.onEvent?.({ kind: "limits", note: sandbox.limitsNote });
    return sandbox;
  }
}

const LIMIT_NAMES = { pids: "processes", memory: "memory", cpu: "cpu" } as const;

function noteFor(cgroups: CgroupDetection): SandboxLimitsNote {
  // RLIMIT_CPU and RLIMIT_FSIZE are set by the launcher outside the sandbox on every host.
  const always = ["cpu seconds per process", "file size", "disk (watched from the host)"];
  if (!cgroups.host) {
    return {
      enforced: always,
      missing: `processes, memory and cpu are not capped by the kernel: ${cgroups.missing}`,
    };
  }
  return {
    enforced: [...cgroups.host.enforced.map((c) => LIMIT_NAMES[c]), ...always],
    missing: cgroups.host.missing,
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

  constructor(
    private readonly bwrap: string,
    readonly workspacePath: string,
    private readonly git: GitLayout | undefined,
    private readonly relay: GatewayRelay | undefined,
    cgroups: CgroupDetection,
    private readonly spec: SandboxSpec,
    private readonly settings: { limits: SandboxLimits; readOnly: string[] },
  ) {
    this.kernelProcessLimit = cgroups.host?.enforced.includes("pids") ?? false;
    this.limitsNote = noteFor(cgroups);
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

  async exec(options: ExecOptions): Promise<ExecResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    if (this.disposed) {
      throw new SandboxError(
        "command_could_not_start",
        "the run's sandbox was already disposed",
        "create a new sandbox for the run",
      );
    }
    const cwd = await this.insideWorkspace(options.cwd ?? this.workspacePath);
    if (options.signal?.aborted) return { ...notStarted(elapsed()), violations: [] };
    const { limits } = this.settings;
    const separateStderr = options.onStderr !== undefined;
    const withRelay =
      this.relay !== undefined && this.spec.gateway !== undefined && options.reachGateway !== false;
    const args = bwrapArgs({
      workspace: this.workspacePath,
      git: this.git,
      readOnly: [...this.settings.readOnly, ...(options.readOnlyPaths ?? [])],
      writable: options.writablePaths ?? [],
      gatewaySocket: withRelay ? this.relay?.socketPath : undefined,
      supervisorFile: withRelay ? SUPERVISOR_FILE : undefined,
      limits,
      cwd,
    });
    const env = scrubbedEnv({
      HOME: SANDBOX_HOME,
      TMPDIR: "/tmp",
      USER: "nightshift",
      ...(withRelay ? this.gatewayEnv : {}),
      ...options.env,
    });
    // Without a gateway nothing but the command runs inside; with one, the relay starts it.
    const inside =
      withRelay && this.spec.gateway
        ? [
            process.execPath,
            SUPERVISOR_PATH,
            JSON.stringify({
              command: options.command,
              cwd,
              separateStderr,
              gateway: {
                port: gatewayAddress(this.spec.gateway.url).port,
                socket: GATEWAY_SOCKET_PATH,
              },
            }),
          ]
        : ["/bin/bash", "-c", options.command];
    // What was there before the command, to undo what it adds if a limit kills it.
    const before = await walkWorkspace(this.workspacePath);
    const cgroup = await this.cgroupPool?.acquire();
    const launch = {
      file: "/bin/sh",
      args: this.launcher(cgroup, separateStderr, [this.bwrap, ...args, "--", ...inside]),
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
    );
    const ending = await superviseProcess(
      {
        ...launch,
        cwd: this.workspacePath,
        env,
        reportChannel: withRelay,
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
      await watch.stop();
      // Leftovers the command backgrounded (or hid from bwrap) end with it: remove() kills them.
      await cgroup?.remove();
    });
    if (ending.kind === "spawn_error") {
      throw new SandboxError(
        "backend_missing",
        `could not start bubblewrap (${this.bwrap}): ${ending.error.message}`,
        BWRAP_INSTALL_HINT,
        { cause: ending.error },
      );
    }
    const report = withRelay ? parseSupervisorReport(ending.report) : undefined;
    const limitHit = watch.hits[0];
    if (!limitHit && !ending.timedOut && !ending.aborted && (report ? !report.exit : true)) {
      const setupError = /^bwrap: .*$/m.exec(ending.output)?.[0];
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
    } else if (report && !report.exit && !ending.aborted && !limitHit) {
      violations.push({
        kind: "supervisor_killed",
        detail:
          "the sandbox's gateway relay was killed from inside; every process of the command ended",
        command: named,
      });
    }
    for (const violation of violations) this.spec.onEvent?.({ kind: "violation", violation });
    const exited = {
      ...ending,
      code: report?.exit ? (report.exit.signal ? null : report.exit.code) : ending.code,
      signal: report?.exit?.signal ?? ending.signal,
    };
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

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
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

  private async insideWorkspace(cwd: string): Promise<string> {
    await assertDirectory(cwd);
    const real = await realpath(cwd);
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
