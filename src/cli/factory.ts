import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import type { AgentDriver, DriverSettings } from "../agents/index.ts";
import { type FactoryConfig, loadConfig } from "../config/index.ts";
import { NightshiftError } from "../errors/index.ts";
import type { Gateway } from "../gateway/index.ts";
import type { BudgetSettings, Ledger } from "../ledger/index.ts";
import { ledgerLocationFor } from "../ledger/location.ts";
import type { AgentDrivers, Housekeeper, Line, WatchdogLimits } from "../line/index.ts";
import type { SandboxBackend } from "../sandbox/index.ts";
import { describeLimits } from "./sandbox-check.ts";

// The modules behind the line (agents, gates, gateway, merge queue, sandbox, ...) and the ledger are
// imported where they are first needed, not above: every CLI call loads this file, and `status`
// or `--help` would otherwise pay for loading all of them.

/** One opened factory: its configuration, ledger and log. */
export interface Factory {
  root: string;
  config: FactoryConfig;
  stateDir: string;
  ledger: Ledger;
  logger: Logger;
  /** The log file, and how to make the logger start it afresh after it was rotated. */
  log: { file: string; reopen(): void };
  close(): Promise<void>;
}

/** The factory's configuration and where its state lives, without opening its ledger. */
export async function locateFactory(
  root: string,
): Promise<{ root: string; config: FactoryConfig; stateDir: string }> {
  const { config } = await loadConfig(root, { required: true });
  return {
    root: path.resolve(root),
    config,
    stateDir: path.resolve(root, config.factory.state_dir),
  };
}

export async function openFactory(root: string, purpose: string): Promise<Factory> {
  const { config, stateDir } = await locateFactory(root);
  await mkdir(path.join(stateDir, "logs"), { recursive: true });
  const [{ default: pino }, { openLedger }] = await Promise.all([
    import("pino"),
    import("../ledger/index.ts"),
  ]);
  const logFile = path.join(stateDir, "logs", "nightshift.log");
  const destination = pino.destination({ dest: logFile, sync: false, mkdir: true });
  const logger = pino(
    { base: { pid: process.pid }, level: process.env.NIGHTSHIFT_LOG_LEVEL ?? "info" },
    destination,
  );
  const ledger = await openLedger(ledgerLocationFor(stateDir), purpose);
  return {
    root: path.resolve(root),
    config,
    stateDir,
    ledger,
    logger,
    log: { file: logFile, reopen: () => destination.reopen() },
    async close() {
      await ledger.close();
      logger.flush();
    },
  };
}

/** nightshift.toml's [budget] limits, by their keys; those left out are unlimited. */
export function budgetSettingsOf(budget: FactoryConfig["budget"]): BudgetSettings {
  const settings: BudgetSettings = {};
  for (const [name, value] of Object.entries(budget)) {
    if (typeof value === "number") settings[name as keyof BudgetSettings] = value;
  }
  return settings;
}

export function inboxDir(factory: { stateDir: string }): string {
  return path.join(factory.stateDir, "inbox");
}

/** Builds the line for a factory, with its gateway and (for the simulator) its model server. */
export async function buildLine(
  factory: Factory,
  options: { forever?: boolean } = {},
): Promise<{ line: Line; gateway: Gateway; close(): Promise<void> }> {
  const { config, ledger, logger } = factory;
  const [
    { createRatchet },
    { Line, LeaderMergeQueue, ledgerScenarios },
    { PullRequestOutput, SerialMergeQueue, SpeculativeMergeQueue },
    { Inbox, WorkFinder },
    { Workspaces },
  ] = await Promise.all([
    import("../gates/index.ts"),
    import("../line/index.ts"),
    import("../merge/index.ts"),
    import("../orders/index.ts"),
    import("../workspace/index.ts"),
  ]);
  // [github]: labelled issues taken in while the line runs, pull-request output; made
  // before anything is started, so that a missing token stops `run` with nothing to undo.
  const gh = config.github;
  const githubModule =
    gh.repo && (gh.labels.length > 0 || gh.output === "pull_request")
      ? await import("../github/index.ts")
      : undefined;
  const github = githubModule?.openGitHub({
    repo: gh.repo,
    baseUrl: gh.base_url,
    tokenEnv: gh.token_env,
  });
  const issues =
    githubModule && github && gh.labels.length > 0
      ? new githubModule.IssuePoller(
          { github, ledger, logger },
          { labels: gh.labels, approval: gh.approval, intervalMs: gh.interval_minutes * 60_000 },
        )
      : undefined;
  const drivers = agentDrivers(
    factory,
    await preparedDriver(factory),
    (await import("../agents/index.ts")).createDriver,
  );
  const sandbox = await openSandbox(config, logger);
  const models = await startModels(factory);
  const workspaces = new Workspaces({
    repoPath: factory.root,
    branch: config.factory.branch,
    rootDir: path.join(factory.stateDir, "worktrees"),
    keepFailed: config.workspace.keep_failed,
    maxFailedBytes: config.workspace.max_failed_mb * 1024 * 1024,
    ...(config.scale.remote ? { remote: config.scale.remote } : {}),
  });
  const gates = createRatchet(config.gates, {
    stateDir: factory.stateDir,
    agentModel: config.agent.model,
    sandbox,
    holdoutScenarios: ledgerScenarios(
      ledger,
      path.resolve(factory.stateDir, config.gates.holdout.dir),
    ),
  });
  // With --forever, a dry queue is filled from [perpetual] sources.
  const perpetual = config.perpetual;
  const finder =
    options.forever && perpetual.sources.length > 0
      ? new WorkFinder(
          {
            ledger,
            repoPath: factory.root,
            branch: config.factory.branch,
            logger,
            // The lint and coverage commands run in a fresh checkout of main, sandboxed as gates.
            checkouts: { workspaces, sandbox },
          },
          {
            sources: perpetual.sources,
            approval: perpetual.approval,
            maxOrdersPerRound: perpetual.max_orders_per_round,
            intervalMs: perpetual.interval_minutes * 60_000,
            goalsFile: perpetual.goals_file,
            todoMarkers: perpetual.todo_markers,
            lint: {
              commands: perpetual.lint.commands,
              timeoutMs: perpetual.lint.timeout_seconds * 1000,
            },
            coverage: {
              command: perpetual.coverage.command,
              report: perpetual.coverage.report,
              format: perpetual.coverage.format,
              metric: perpetual.coverage.metric,
              threshold: perpetual.coverage.threshold,
              timeoutMs: perpetual.coverage.timeout_seconds * 1000,
            },
          },
        )
      : undefined;
  const workerId = `${os.hostname()}:${process.pid}`;
  const shared = ledgerLocationFor(factory.stateDir).kind === "postgres";
  const queue =
    config.merge.queue === "speculative"
      ? new SpeculativeMergeQueue(workspaces, gates, {
          maxBatch: config.merge.max_batch,
          depth: config.merge.depth,
          maxRounds: config.merge.max_rounds,
          scratchDir: path.join(factory.stateDir, "queue"),
          onDecision: (decision) => logger.info({ decision }, "merge queue"),
        })
      : new SerialMergeQueue(workspaces, gates);
  const line = new Line(
    {
      ledger,
      workspaces,
      drivers,
      gates,
      // [github] output = "pull_request" proposes candidates instead of landing them; workers
      // sharing a ledger land one leader at a time; an embedded ledger has one worker, which is
      // its own leader.
      mergeQueue:
        github && gh.output === "pull_request"
          ? new PullRequestOutput(github, { remote: gh.remote, base: config.factory.branch })
          : shared
            ? new LeaderMergeQueue(queue, {
                roster: ledger.workers,
                workerId,
                leaseMs: config.line.lease_seconds * 1000,
                pollMs: config.line.poll_interval_ms,
                logger,
              })
            : queue,
      sandbox,
      sandboxDefectAfter: config.sandbox.defect_after,
      models: models.gateway,
      logger,
      intake: async () => {
        const { added, rejected } = await new Inbox(inboxDir(factory)).drain(ledger);
        if (added.length > 0)
          logger.info({ orders: added.map((o) => o.id) }, "took in orders from the inbox");
        for (const r of rejected) logger.error(r, "refused an inbox file");
        await issues?.poll();
        // In the background (a check's command may take minutes). Another worker may add the
        // same finding first: the ledger's unique key refuses ours.
        finder?.poke();
      },
      workerId,
      soleWorker: !shared,
    },
    {
      concurrency: config.line.concurrency,
      maxAttempts: config.line.max_attempts,
      pollIntervalMs: config.line.poll_interval_ms,
      leaseMs: config.line.lease_seconds * 1000,
      driver: config.agent.driver,
      model: config.agent.model,
      maxSteps: config.agent.max_steps,
      maxTokensPerRun: config.budget.max_tokens_per_run,
      commandTimeoutMs: config.agent.command_timeout_seconds * 1000,
      testCommand: config.gates.test,
      ...(config.scheduler.scopes === "separate"
        ? { scopes: { unscoped: config.scheduler.unscoped } }
        : {}),
      watchdog: watchdogLimits(config),
      circuitBreaker: {
        enabled: config.circuit_breaker.enabled,
        window: config.circuit_breaker.window,
        failures: config.circuit_breaker.failures,
        coolDownMs: config.circuit_breaker.cool_down_minutes * 60_000,
      },
    },
  );
  return {
    line,
    gateway: models.gateway,
    close: async () => {
      await finder?.stop();
      await models.close();
    },
  };
}

/** Keeps the transcripts and the log of a long-running line within [retention]. */
export async function housekeeper(factory: Factory): Promise<Housekeeper> {
  const { Housekeeper } = await import("../line/index.ts");
  const r = factory.config.retention;
  return new Housekeeper(
    {
      ...(factory.config.gateway.transcripts
        ? { transcriptsDir: path.join(factory.stateDir, "transcripts") }
        : {}),
      logFile: factory.log.file,
    },
    {
      keepTranscripts: r.keep_transcripts,
      maxTranscriptsBytes: r.max_transcripts_mb * 1024 * 1024,
      maxLogBytes: r.max_log_mb * 1024 * 1024,
      keepLogs: r.keep_logs,
      checkIntervalMs: r.check_minutes * 60_000,
    },
    factory.log.reopen,
    factory.logger,
  );
}

/** The [watchdog] section as the line's limits. */
export function watchdogLimits(config: FactoryConfig): WatchdogLimits {
  const w = config.watchdog;
  return {
    stallMs: w.stall_seconds * 1000,
    loopRepeats: w.loop_repeats,
    maxTokens: w.max_tokens_per_run,
    maxUsd: w.max_usd_per_run,
    maxOutputBytes: Math.round(w.max_output_mb * 1024 * 1024),
    escapeLimit: w.escape_limit,
    checkIntervalMs: w.check_seconds * 1000,
    onMeltdown: w.on_meltdown,
  };
}

/**
 * The configured agent driver (or the one named, e.g. by a queued order), checked before the line
 * takes work: a CLI that is not installed, does not start, or cannot work through the gateway
 * stops `run` with the fix, not every run.
 */
export async function preparedDriver(
  factory: { root: string; config: FactoryConfig; stateDir: string },
  name: string = factory.config.agent.driver,
): Promise<AgentDriver> {
  const { createDriver } = await import("../agents/index.ts");
  const driver = createDriver(name, driverSettings(factory));
  await driver.preflight?.();
  return driver;
}

/**
 * Every driver the line may need, by name: the default one already prepared, any other built on
 * first use with the same [agent] settings. Building them all up front would demand every agent
 * CLI be installed when orders name only one; checking the drivers the queued orders need is the
 * pre-flight check's job (see Ledger.pendingAgentChoices).
 */
function agentDrivers(
  factory: { root: string; config: FactoryConfig; stateDir: string },
  prepared: AgentDriver,
  createDriver: typeof import("../agents/index.ts").createDriver,
): AgentDrivers {
  const settings = driverSettings(factory);
  const built = new Map<string, AgentDriver>([[factory.config.agent.driver, prepared]]);
  return {
    get(name) {
      let driver = built.get(name);
      if (!driver) {
        driver = createDriver(name, settings);
        built.set(name, driver);
      }
      return driver;
    },
  };
}

/** What [agent] says about each driver, paths resolved against the repository. */
export function driverSettings(factory: {
  root: string;
  config: FactoryConfig;
  stateDir: string;
}): DriverSettings {
  const agent = factory.config.agent;
  return {
    common: {
      searchFrom: [factory.root],
      wallTimeMs: agent.wall_time_minutes * 60_000,
      homesDir: path.join(factory.stateDir, "agent-homes"),
      ...(agent.instructions_file
        ? { instructionsFile: path.resolve(factory.root, agent.instructions_file) }
        : {}),
    },
    claudeCode: {
      ...(agent.claude_code.path
        ? { path: path.resolve(factory.root, agent.claude_code.path) }
        : {}),
      permissionMode: agent.claude_code.permission_mode,
      disallowedTools: agent.claude_code.disallowed_tools,
    },
    codex: {
      ...(agent.codex.path ? { path: path.resolve(factory.root, agent.codex.path) } : {}),
      sandbox: agent.codex.sandbox,
    },
    opencode: agent.opencode.path ? { path: path.resolve(factory.root, agent.opencode.path) } : {},
    geminiCli: agent.gemini_cli.path
      ? { path: path.resolve(factory.root, agent.gemini_cli.path) }
      : {},
  };
}

/**
 * The configured sandbox backend, proven to isolate on this host (the self-test) before any run
 * starts. A missing backend or a wall that does not hold stops the line with the fix to apply.
 */
export async function openSandbox(config: FactoryConfig, logger: Logger): Promise<SandboxBackend> {
  const s = config.sandbox;
  const { createSandboxBackend, SandboxError, selfTestSandbox } = await import(
    "../sandbox/index.ts"
  );
  try {
    const backend = createSandboxBackend({
      backend: s.backend,
      allowUnsandboxed: s.allow_unsandboxed,
      readOnlyPaths: s.read_only,
      limits: {
        maxProcesses: s.max_processes,
        maxMemoryBytes: s.max_memory_mb * 1024 * 1024,
        maxWorkspaceBytes: s.max_workspace_mb * 1024 * 1024,
        cpuSeconds: s.cpu_seconds,
        tmpBytes: s.tmp_mb * 1024 * 1024,
      },
    });
    if (backend.name === "none") {
      logger.warn("sandbox backend none: runs are NOT isolated");
    } else if (s.self_test) {
      const result = await selfTestSandbox(backend);
      logger.info(result, "sandbox self-test passed");
    }
    const note = await backend.limitsNote?.();
    if (note?.missing) {
      logger.warn({ limits: note }, `sandbox limits: ${describeLimits(note)}`);
    } else if (note) {
      logger.info({ limits: note }, `sandbox limits: ${describeLimits(note)}`);
    }
    return backend;
  } catch (error) {
    if (!(error instanceof SandboxError)) throw error;
    throw new NightshiftError(`sandbox_${error.code}`, error.detail, {
      hint: error.hint,
      cause: error,
    });
  }
}

/**
 * The gateway in front of the configured providers (the simulator, if configured, is started
 * here): it routes each request by protocol and model.
 */
export async function startModels(
  factory: Factory,
  options: { adminToken?: string } = {},
): Promise<{ gateway: Gateway; simulated: boolean; close(): Promise<void> }> {
  const { config } = factory;
  const [{ Gateway, loadPrices, modelRouter }, { startProviders }, { ledgerMetrics }] =
    await Promise.all([
      import("../gateway/index.ts"),
      import("./models.ts"),
      import("../metrics/index.ts"),
    ]);
  const started = await startProviders(factory);
  try {
    const gateway = new Gateway({
      ledger: factory.ledger,
      logger: factory.logger.child({ part: "gateway" }),
      prices: await loadPrices(
        config.gateway.prices_file && path.resolve(factory.root, config.gateway.prices_file),
      ),
      limits: {
        runTokens: config.budget.max_tokens_per_run,
        ...(config.budget.max_usd_per_run ? { runUsd: config.budget.max_usd_per_run } : {}),
        ...(config.budget.max_usd_per_order ? { orderUsd: config.budget.max_usd_per_order } : {}),
        ...(config.budget.max_usd_per_day ? { dayUsd: config.budget.max_usd_per_day } : {}),
        ...(config.budget.max_usd_total ? { totalUsd: config.budget.max_usd_total } : {}),
      },
      router: modelRouter(started.providers, config.models),
      retry: { attempts: config.gateway.retries },
      metrics: ledgerMetrics(factory.ledger),
      // The embedded ledger is this process's alone: budgets need no ledger round trip per request.
      exclusiveLedger: ledgerLocationFor(factory.stateDir).kind !== "postgres",
      streamIdleTimeoutMs: config.gateway.stream_idle_timeout_seconds * 1000,
      ...(options.adminToken ? { adminToken: options.adminToken } : {}),
      ...(config.gateway.transcripts
        ? { transcriptsDir: path.join(factory.stateDir, "transcripts") }
        : {}),
    });
    await gateway.listen(config.gateway.host, config.gateway.port);
    return {
      gateway,
      simulated: started.simulated,
      async close() {
        await gateway.close();
        await started.close();
      },
    };
  } catch (error) {
    await started.close();
    throw error;
  }
}
