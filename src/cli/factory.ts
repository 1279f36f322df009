import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino, { type Logger } from "pino";
import { createDriver } from "../agents/index.ts";
import { type FactoryConfig, loadConfig } from "../config/index.ts";
import { NightshiftError } from "../errors/index.ts";
import { createTestGate } from "../gates/index.ts";
import { Gateway, type GatewayOptions, loadPrices } from "../gateway/index.ts";
import { type Ledger, ledgerLocationFor, openLedger } from "../ledger/index.ts";
import { Line } from "../line/index.ts";
import { Inbox } from "../orders/index.ts";
import { demoPolicy, startSimulator } from "../sim/index.ts";
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

export function inboxDir(factory: { stateDir: string }): string {
  return path.join(factory.stateDir, "inbox");
}

/** Builds the line for a factory, with its gateway and (for the simulator) its model server. */
export async function buildLine(
  factory: Factory,
): Promise<{ line: Line; gateway: Gateway; close(): Promise<void> }> {
  const { config, ledger, logger } = factory;
  const models = await startModels(factory);
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
      models: models.gateway,
      logger,
      intake: async () => {
        const { added, rejected } = await new Inbox(inboxDir(factory)).drain(ledger);
        if (added.length > 0)
          logger.info({ orders: added.map((o) => o.id) }, "took in orders from the inbox");
        for (const r of rejected) logger.error(r, "refused an inbox file");
      },
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
  return { line, gateway: models.gateway, close: models.close };
}

/**
 * The gateway in front of the configured provider: the bundled simulator (started here) or an
 * OpenAI-compatible endpoint whose key the gateway alone holds.
 */
export async function startModels(
  factory: Factory,
  options: { adminToken?: string } = {},
): Promise<{ gateway: Gateway; close(): Promise<void> }> {
  const { config } = factory;
  const provider = await startProvider(config);
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
      upstreams: provider.upstreams,
      retry: { attempts: config.gateway.retries },
      streamIdleTimeoutMs: config.gateway.stream_idle_timeout_seconds * 1000,
      ...(options.adminToken ? { adminToken: options.adminToken } : {}),
      ...(config.gateway.transcripts
        ? { transcriptsDir: path.join(factory.stateDir, "transcripts") }
        : {}),
    });
    await gateway.seedBudgets();
    await gateway.listen(config.gateway.host, config.gateway.port);
    return {
      gateway,
      async close() {
        await gateway.close();
        await provider.close();
      },
    };
  } catch (error) {
    await provider.close();
    throw error;
  }
}

async function startProvider(
  config: FactoryConfig,
): Promise<{ upstreams: GatewayOptions["upstreams"]; close(): Promise<void> }> {
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
    const upstream = {
      baseURL: simulator.url.replace(/\/v1$/, ""),
      apiKey: "simulated",
      auth: "bearer" as const,
    };
    return {
      upstreams: {
        "openai-chat": upstream,
        "anthropic-messages": upstream,
        "openai-responses": upstream,
      },
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
  const baseURL = (config.model.base_url as string).replace(/\/+$/, "").replace(/\/v1$/, "");
  const upstream = { baseURL, apiKey, auth: "bearer" as const };
  return {
    upstreams: { "openai-chat": upstream, "openai-responses": upstream },
    close: async () => {},
  };
}
