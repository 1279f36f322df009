import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino, { type Logger } from "pino";
import { createDriver, type ModelEndpoint } from "../agents/index.ts";
import { type FactoryConfig, loadConfig } from "../config/index.ts";
import { NightshiftError } from "../errors/index.ts";
import { createTestGate } from "../gates/index.ts";
import { type Ledger, ledgerLocationFor, openLedger } from "../ledger/index.ts";
import { Line } from "../line/index.ts";
import { demoPolicy, type RunningSimulator, startSimulator } from "../sim/index.ts";
import { Workspaces } from "../workspace/index.ts";

/** One opened factory: its configuration, ledger and log. */
export interface Factory {
  root: string;
  config: FactoryConfig;
  stateDir: string;
  ledger: Ledger;
  logger: Logger;
  close(): Promise<void>;
}

export async function openFactory(root: string, purpose: string): Promise<Factory> {
  const { config } = await loadConfig(root, { required: true });
  const stateDir = path.resolve(root, config.factory.state_dir);
  await mkdir(path.join(stateDir, "logs"), { recursive: true });
  const logger = pino(
    { base: { pid: process.pid }, level: process.env.NIGHTSHIFT_LOG_LEVEL ?? "info" },
    pino.destination({
      dest: path.join(stateDir, "logs", "nightshift.log"),
      sync: false,
      mkdir: true,
    }),
  );
  const ledger = await openLedger(ledgerLocationFor(stateDir), purpose);
  return {
    root: path.resolve(root),
    config,
    stateDir,
    ledger,
    logger,
    async close() {
      await ledger.close();
      logger.flush();
    },
  };
}

/** Builds the line for a factory; the model endpoint it needs is started here and stopped by `close`. */
export async function buildLine(factory: Factory): Promise<{ line: Line; close(): Promise<void> }> {
  const { config, ledger, logger } = factory;
  const model = await modelEndpoint(config);
  const workspaces = new Workspaces({
    repoPath: factory.root,
    branch: config.factory.branch,
    rootDir: path.join(factory.stateDir, "worktrees"),
    keepFailed: config.workspace.keep_failed,
    maxFailedBytes: config.workspace.max_failed_mb * 1024 * 1024,
  });
  const line = new Line(
    {
      ledger,
      workspaces,
      driver: createDriver(config.agent.driver),
      gates: [
        createTestGate({
          command: config.gates.test,
          timeoutMs: config.gates.timeout_seconds * 1000,
        }),
      ],
      endpointFor: () => model.endpoint,
      logger,
      workerId: `${os.hostname()}:${process.pid}`,
      soleWorker: ledgerLocationFor(factory.stateDir).kind !== "postgres",
    },
    {
      concurrency: config.line.concurrency,
      maxAttempts: config.line.max_attempts,
      pollIntervalMs: config.line.poll_interval_ms,
      leaseMs: config.line.lease_seconds * 1000,
      model: config.agent.model,
      maxSteps: config.agent.max_steps,
      maxTokensPerRun: config.budget.max_tokens_per_run,
      commandTimeoutMs: config.agent.command_timeout_seconds * 1000,
      testCommand: config.gates.test,
    },
  );
  return { line, close: model.close };
}

async function modelEndpoint(
  config: FactoryConfig,
): Promise<{ endpoint: ModelEndpoint; simulator?: RunningSimulator; close(): Promise<void> }> {
  if (config.model.provider === "simulator") {
    const sim = config.simulator;
    const simulator = await startSimulator({
      policy: demoPolicy({
        seed: sim.seed,
        brokenPatchRate: sim.broken_patch_rate,
        giveUpRate: sim.give_up_rate,
        fixOnFeedbackRate: sim.fix_on_feedback_rate,
      }),
      latency: { firstTokenMs: sim.first_token_ms },
    });
    return {
      endpoint: { baseURL: simulator.url, apiKey: "simulated" },
      simulator,
      close: simulator.close,
    };
  }
  const keyName = config.model.api_key_env;
  const apiKey = process.env[keyName];
  if (!apiKey) {
    throw new NightshiftError(
      "model_key_missing",
      `the environment variable ${keyName} is not set`,
      {
        hint: `export ${keyName}=<your key>, or set [model] api_key_env to the variable that holds it`,
      },
    );
  }
  return {
    endpoint: { baseURL: config.model.base_url as string, apiKey },
    close: async () => {},
  };
}
