import { realpath } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createPidsCgroup, pidsRoot } from "./cgroup.ts";
import { scrubbedEnv } from "./env.ts";
import { SandboxError } from "./errors.ts";
import { findProgram } from "./find-program.ts";
import { GatewayRelay, gatewayAddress } from "./gateway-relay.ts";
import { type GitLayout, gitLayout } from "./git-layout.ts";
import { bwrapArgs, SANDBOX_HOME, SUPERVISOR_PATH } from "./mount-plan.ts";
import { assertDirectory, notStarted, supervision } from "./run-command.ts";
import { endingNote, superviseProcess } from "./supervise.ts";
import {
  DEFAULT_LIMITS,
  type ExecOptions,
  type ExecResult,
  type RunSandbox,
  type SandboxBackend,
  type SandboxLimits,
  type SandboxSpec,
  type SandboxViolation,
} from "./types.ts";
import {
  limitViolations,
  OutputScanner,
  onePerKind,
  parseSupervisorReport,
  probesInCommand,
} from "./violations.ts";

export const BWRAP_INSTALL_HINT =
  "install bubblewrap: `sudo apt-get install bubblewrap` (Debian/Ubuntu), `sudo dnf install bubblewrap` (Fedora); or choose another [sandbox] backend in nightshift.toml";

/**
 * The cgroup counts threads as well as processes; node and test runners start several threads
 * each, so the kernel's cap is this multiple of the process limit the supervisor enforces.
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
  private pidsRootFound: Promise<string | undefined> | undefined;

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

  async create(spec: SandboxSpec): Promise<RunSandbox> {
    const workspace = await realpath(spec.workspacePath).catch(() => {
      throw new SandboxError(
        "invalid_sandbox_spec",
        `the workspace ${spec.workspacePath} does not exist`,
        "create the run's worktree before its sandbox",
      );
    });
    const git = await gitLayout(workspace);
    this.pidsRootFound ??= pidsRoot();
    const cgroupRoot = await this.pidsRootFound;
    const target = spec.gateway ? gatewayAddress(spec.gateway.url) : undefined;
    const relay = target ? await GatewayRelay.start(target) : undefined;
    return new BubblewrapSandbox(this.bwrapPath, workspace, git, relay, cgroupRoot, spec, {
      limits: { ...DEFAULT_LIMITS, ...this.options.limits, ...spec.limits },
      readOnly: [
        ...nightshiftModules(),
        ...repositoryModules(git),
        ...(this.options.readOnlyPaths ?? []),
        ...(spec.readOnlyPaths ?? []),
      ],
    });
  }
}

/** The repository's own node_modules (next to its .git): tools resolve it from the worktree. */
function repositoryModules(git: GitLayout | undefined): string[] {
  if (!git || path.basename(git.commonDir) !== ".git") return [];
  return [path.join(path.dirname(git.commonDir), "node_modules")];
}

class BubblewrapSandbox implements RunSandbox {
  readonly backend = "bubblewrap" as const;
  readonly gatewayEnv: Record<string, string>;
  readonly kernelProcessLimit: boolean;
  private disposed = false;

  constructor(
    private readonly bwrap: string,
    readonly workspacePath: string,
    private readonly git: GitLayout | undefined,
    private readonly relay: GatewayRelay | undefined,
    /** Where this command's pids cgroup goes; undefined where the host offers none. */
    readonly pidsRoot: string | undefined,
    private readonly spec: SandboxSpec,
    private readonly settings: { limits: SandboxLimits; readOnly: string[] },
  ) {
    this.kernelProcessLimit = pidsRoot !== undefined;
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
    const supervisorConfig = {
      command: options.command,
      cwd,
      workspace: this.workspacePath,
      limits,
      separateStderr: options.onStderr !== undefined,
      ...(this.relay && this.spec.gateway
        ? {
            gateway: {
              port: gatewayAddress(this.spec.gateway.url).port,
              socket: "/run/nightshift/gateway.sock",
            },
          }
        : {}),
    };
    const args = bwrapArgs({
      workspace: this.workspacePath,
      git: this.git,
      readOnly: [...this.settings.readOnly, ...(options.readOnlyPaths ?? [])],
      writable: options.writablePaths ?? [],
      gatewaySocket: this.relay?.socketPath,
      supervisorFile: SUPERVISOR_FILE,
      limits,
      cwd,
    });
    const env = scrubbedEnv({
      HOME: SANDBOX_HOME,
      TMPDIR: "/tmp",
      USER: "nightshift",
      ...this.gatewayEnv,
      ...options.env,
    });
    const command = [
      this.bwrap,
      ...args,
      "--",
      process.execPath,
      SUPERVISOR_PATH,
      JSON.stringify(supervisorConfig),
    ];
    const cgroup = this.pidsRoot
      ? await createPidsCgroup(this.pidsRoot, limits.maxProcesses * TASKS_PER_PROCESS)
      : undefined;
    // The launcher joins the cgroup before it becomes bwrap, so nothing of the sandbox is outside.
    const launch = cgroup
      ? {
          file: "/bin/sh",
          args: ["-c", 'echo $$ > "$0" && exec "$@"', cgroup.procsFile, ...command],
        }
      : { file: this.bwrap, args: command.slice(1) };
    const named = options.label ?? options.command;
    // Every line of output is scanned as it streams, not only what the capped capture keeps.
    const outScanner = new OutputScanner(named);
    const errScanner = new OutputScanner(named);
    const { onOutput, onStderr } = options;
    const ending = await superviseProcess(
      { ...launch, cwd: this.workspacePath, env, reportChannel: true, captureStderr: true },
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
    ).finally(() => cgroup?.remove());
    if (ending.kind === "spawn_error") {
      throw new SandboxError(
        "backend_missing",
        `could not start bubblewrap (${this.bwrap}): ${ending.error.message}`,
        BWRAP_INSTALL_HINT,
        { cause: ending.error },
      );
    }
    const report = parseSupervisorReport(ending.report);
    if (!report.exit && !ending.timedOut && !ending.aborted) {
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
    const violations: SandboxViolation[] = onePerKind([
      ...probes,
      ...limitViolations(report, named),
      ...outScanner.end(),
      ...errScanner.end(),
    ]);
    if (ending.timedOut) {
      violations.push({
        kind: "timeout",
        detail: `timed out after ${options.timeoutMs} ms`,
        command: named,
      });
    } else if (!report.exit && !ending.aborted) {
      violations.push({
        kind: "supervisor_killed",
        detail:
          "the sandbox's supervisor was killed from inside; every process of the command ended",
        command: named,
      });
    }
    for (const violation of violations) this.spec.onEvent?.({ kind: "violation", violation });
    const exited = {
      ...ending,
      code: report.exit ? (report.exit.signal ? null : report.exit.code) : ending.code,
      signal: report.exit?.signal ?? ending.signal,
    };
    return {
      exitCode: exited.code,
      signal: exited.signal,
      output: exited.output + endingNote(exited, options.timeoutMs),
      timedOut: exited.timedOut,
      aborted: exited.aborted,
      durationMs: elapsed(),
      violations,
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.relay?.close();
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
