import { z } from "zod";
// The perpetual loop's sections.
import {
  economicsSection,
  githubSection,
  perpetualSection,
  plannerSection,
  schedulerSection,
} from "./loop-sections.ts";
import {
  KIND_DEFAULTS,
  kindOf,
  legacyModelSection,
  modelRouteSection,
  PROVIDER_KINDS,
  type ProviderSection,
  providerSection,
} from "./providers.ts";

/**
 * The shape of nightshift.toml. Every key has a default so that an empty file is a valid factory;
 * `.strict()` everywhere so that a misspelt key is an error instead of a silently ignored setting.
 */
export const factorySection = z
  .object({
    name: z.string().min(1).default("factory"),
    branch: z.string().min(1).default("main"),
    state_dir: z.string().min(1).default(".nightshift"),
  })
  .strict();

/** Where an agent CLI is, when it is not the npm package nightshift finds by itself. */
const cliPath = z.string().min(1).optional();

export const claudeCodeSection = z
  .object({
    path: cliPath,
    /** "bypassPermissions" (every tool, unattended: the sandbox is the wall) or "acceptEdits". */
    permission_mode: z.enum(["bypassPermissions", "acceptEdits"]).default("bypassPermissions"),
    /** Tools the agent never gets; the web tools would reach past the gateway. */
    disallowed_tools: z.array(z.string().min(1)).default(["WebFetch", "WebSearch"]),
  })
  .strict();

export const codexSection = z
  .object({
    path: cliPath,
    /** Codex's own sandbox for its commands; "danger-full-access" when nightshift's wraps it. */
    sandbox: z.enum(["workspace-write", "danger-full-access"]).default("workspace-write"),
  })
  .strict();

export const cliOnlySection = z.object({ path: cliPath }).strict();

export const agentSection = z
  .object({
    driver: z
      .enum(["builtin", "claude-code", "codex", "opencode", "gemini-cli"])
      .default("builtin"),
    /** Default: the first provider's usual model (claude-sonnet-5-5 for [providers.anthropic], ...). */
    model: z.string().min(1).optional(),
    max_steps: z.number().int().min(1).max(500).default(30),
    command_timeout_seconds: z.number().positive().max(86_400).default(300),
    /** Longest one CLI agent run may take; then it and everything it started are killed. */
    wall_time_minutes: z
      .number()
      .positive()
      .max(24 * 60)
      .default(60),
    /** A file of extra instructions for every run (relative to the repository). */
    instructions_file: z.string().min(1).optional(),
    claude_code: claudeCodeSection.default(claudeCodeSection.parse({})),
    codex: codexSection.default(codexSection.parse({})),
    opencode: cliOnlySection.default(cliOnlySection.parse({})),
    gemini_cli: cliOnlySection.default(cliOnlySection.parse({})),
  })
  .strict();

export const simulatorSection = z
  .object({
    /**
     * "stand-in": a labelled stand-in that answers every request by saying it is simulated and
     * changes nothing; "demo": the demo's scripted patches, which apply only to the demo repository.
     */
    policy: z.enum(["stand-in", "demo"]).default("stand-in"),
    seed: z.number().int().default(1),
    broken_patch_rate: z.number().min(0).max(1).default(0.2),
    give_up_rate: z.number().min(0).max(1).default(0.05),
    fix_on_feedback_rate: z.number().min(0).max(1).default(0.9),
    first_token_ms: z.number().int().min(0).max(60_000).default(0),
  })
  .strict();

export const lineSection = z
  .object({
    concurrency: z.number().int().min(1).max(64).default(2),
    max_attempts: z.number().int().min(1).max(20).default(3),
    poll_interval_ms: z.number().int().min(50).max(600_000).default(2_000),
    lease_seconds: z.number().int().min(5).max(3_600).default(60),
  })
  .strict();

export const GATE_NAMES = [
  "diff",
  "secrets",
  "dependencies",
  "build",
  "typecheck",
  "lint",
  "test",
  "holdout",
  "reviewer",
] as const;

const command = z.string().default("");

export const gatesSection = z
  .object({
    /** The ratchet, in order; a gate listed but not configured (empty command, disabled) is skipped. */
    order: z
      .array(z.enum(GATE_NAMES))
      .refine((names) => new Set(names).size === names.length, "lists a gate twice")
      .default([...GATE_NAMES]),
    test: z.string().min(1).default("npm test"),
    build: command,
    typecheck: command,
    lint: command,
    timeout_seconds: z.number().positive().max(86_400).default(600),
    diff: z
      .object({
        max_files: z.number().int().min(1).default(50),
        max_lines: z.number().int().min(1).default(2_000),
        /** Globs an agent may not touch; the default covers CI config, lockfiles and nightshift's own files. */
        protected: z.array(z.string().min(1)).optional(),
        allow_binary: z.boolean().default(false),
      })
      .strict()
      .default({ max_files: 50, max_lines: 2_000, allow_binary: false }),
    secrets: z
      .object({ enabled: z.boolean().default(true) })
      .strict()
      .default({ enabled: true }),
    dependencies: z
      .object({
        enabled: z.boolean().default(true),
        allow: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .default({ enabled: true, allow: [] }),
    holdout: z
      .object({
        /** Relative to the factory's state_dir unless absolute; must lie outside every workspace. */
        dir: z.string().min(1).default("holdout"),
        /** Empty: no holdout gate. `{file}` runs the command once per scenario file. */
        command,
        target: z.string().min(1).default(".holdout"),
        /**
         * `nightshift add` has a model draft hidden scenarios for an order with acceptance criteria
         * and none given; the order waits for a person's approve/reject.
         */
        acceptance_writer: z.boolean().default(false),
        /** The acceptance writer's model at the gateway; empty uses [agent] model. */
        acceptance_model: z.string().default(""),
      })
      .strict()
      .default({
        dir: "holdout",
        command: "",
        target: ".holdout",
        acceptance_writer: false,
        acceptance_model: "",
      }),
    reviewer: z
      .object({
        enabled: z.boolean().default(false),
        /** Model name at the gateway; empty uses [agent] model. */
        model: z.string().default(""),
      })
      .strict()
      .default({ enabled: false, model: "" }),
  })
  .strict();

export const mergeSection = z
  .object({
    /** "speculative": batches, speculation and bisection; "serial": one candidate at a time. */
    queue: z.enum(["speculative", "serial"]).default("speculative"),
    /** Most candidates tested together. */
    max_batch: z.number().int().min(1).max(64).default(4),
    /** Most stacks under test at once (each one runs the tree gates: mind the cores). */
    depth: z.number().int().min(1).max(32).default(2),
    /** Most gate rounds a candidate may take in the queue before its order is sent back. */
    max_rounds: z.number().int().min(1).max(100).default(12),
  })
  .strict();

const usd = z.number().positive("must be a positive amount of US dollars");

export const budgetSection = z
  .object({
    max_tokens_per_run: z.number().int().positive().default(500_000),
    max_usd_per_run: usd.optional(),
    max_usd_per_order: usd.optional(),
    max_usd_per_day: usd.optional(),
    max_usd_total: usd.optional(),
  })
  .strict();

export const gatewaySection = z
  .object({
    host: z.string().min(1).default("127.0.0.1"),
    /** 0 picks a free port. */
    port: z.number().int().min(0).max(65_535).default(0),
    prices_file: z.string().min(1).optional(),
    transcripts: z.boolean().default(true),
    stream_idle_timeout_seconds: z.number().positive().max(3_600).default(120),
    retries: z.number().int().min(1).max(10).default(3),
  })
  .strict();

export const workspaceSection = z
  .object({
    keep_failed: z.number().int().min(0).max(1_000).default(10),
    max_failed_mb: z.number().int().min(0).default(1_024),
  })
  .strict();

export const sandboxSection = z
  .object({
    /** "bubblewrap" (Linux namespaces, the default), "container" (podman/docker), "none". */
    backend: z.enum(["bubblewrap", "container", "none"]).default("bubblewrap"),
    /** Required as well for backend = "none": running agents unsandboxed is never a default. */
    allow_unsandboxed: z.boolean().default(false),
    max_processes: z.number().int().min(8).max(100_000).default(256),
    max_memory_mb: z.number().int().min(64).default(4_096),
    max_workspace_mb: z.number().int().min(16).default(2_048),
    cpu_seconds: z.number().int().min(1).default(900),
    tmp_mb: z.number().int().min(8).default(512),
    /** Host paths every sandbox may read (a toolchain outside /usr, shared caches). */
    read_only: z.array(z.string().min(1)).default([]),
    /** A run with this many blocked attempts raises a defect for the supervisor. */
    defect_after: z.number().int().min(1).default(3),
    /** Prove the walls hold before the line starts. */
    self_test: z.boolean().default(true),
  })
  .strict();

export const watchdogSection = z
  .object({
    /** A run with no agent event (model reply, tool call, output) for this long is stalled. */
    stall_seconds: z.number().positive().max(86_400).default(600),
    /** This many identical tool calls in a row, or the same call failing this many times, is a loop. */
    loop_repeats: z.number().int().min(2).max(1_000).default(6),
    /** Tokens metered to one run beyond which it runs away (none: only the budget's limit). */
    max_tokens_per_run: z.number().int().positive().optional(),
    /** Cost metered to one run beyond which it runs away. */
    max_usd_per_run: usd.optional(),
    /** Agent output (messages, tool output) beyond which a run floods. */
    max_output_mb: z.number().positive().max(10_240).default(32),
    /** Blocked sandbox attempts at which a run is stopped. */
    escape_limit: z.number().int().min(1).max(10_000).default(10),
    /** How often a run's metered spend is read. */
    check_seconds: z.number().positive().max(3_600).default(5),
    /** "retry": a fresh run told what went wrong; "fail": the order goes to a person at once. */
    on_meltdown: z.enum(["retry", "fail"]).default("retry"),
  })
  .strict();

export const circuitBreakerSection = z
  .object({
    enabled: z.boolean().default(true),
    /** How many of the most recent runs are looked at. */
    window: z.number().int().min(1).max(1_000).default(10),
    /** Failed runs (for reasons outside their orders) among them that pause the line. */
    failures: z.number().int().min(1).max(1_000).default(5),
    /** After this long paused, one probe run is let through; 0: only `nightshift resume` resumes. */
    cool_down_minutes: z
      .number()
      .min(0)
      .max(7 * 24 * 60)
      .default(15),
  })
  .strict();

export const retentionSection = z
  .object({
    /** Transcript files (one per run) kept; the oldest go first. */
    keep_transcripts: z.number().int().min(1).max(1_000_000).default(500),
    max_transcripts_mb: z.number().int().min(1).default(1_024),
    /** nightshift.log is rotated past this size; this many rotated logs are kept. */
    max_log_mb: z.number().int().min(1).max(10_240).default(50),
    keep_logs: z.number().int().min(0).max(1_000).default(5),
    /** How often a long-running line applies these caps. */
    check_minutes: z.number().positive().max(1_440).default(10),
  })
  .strict();

export const scaleSection = z
  .object({
    /**
     * The shared git remote (a name from `git remote`) main lives on when workers on several hosts
     * share a PostgreSQL ledger: candidates are pushed there and main moves only by a push that
     * names the tip it expects. Unset: main is the local branch (one host).
     */
    remote: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
        'must be the name of a git remote of the repository (see `git remote`), e.g. "origin"',
      )
      .optional(),
    /** On SIGTERM a worker stops claiming and lets its runs finish for this long, then hands them back. */
    drain_seconds: z.number().int().min(0).max(86_400).default(120),
  })
  .strict();

export const configSchema = z
  .object({
    factory: factorySection.default(factorySection.parse({})),
    agent: agentSection.default(agentSection.parse({})),
    providers: z.record(z.string(), providerSection).default({}),
    models: z.record(z.string().min(1), modelRouteSection).default({}),
    /** Pre-providers form of a single provider; read for older files. */
    model: legacyModelSection.optional(),
    simulator: simulatorSection.default(simulatorSection.parse({})),
    line: lineSection.default(lineSection.parse({})),
    gates: gatesSection.default(gatesSection.parse({})),
    merge: mergeSection.default(mergeSection.parse({})),
    budget: budgetSection.default(budgetSection.parse({})),
    gateway: gatewaySection.default(gatewaySection.parse({})),
    workspace: workspaceSection.default(workspaceSection.parse({})),
    sandbox: sandboxSection.default(sandboxSection.parse({})),
    // The perpetual loop's sections (src/config/loop-sections.ts).
    scheduler: schedulerSection.default(schedulerSection.parse({})),
    planner: plannerSection.default(plannerSection.parse({})),
    perpetual: perpetualSection.default(perpetualSection.parse({})),
    economics: economicsSection.default(economicsSection.parse({})),
    github: githubSection.default(githubSection.parse({})),
    watchdog: watchdogSection.default(watchdogSection.parse({})),
    circuit_breaker: circuitBreakerSection.default(circuitBreakerSection.parse({})),
    retention: retentionSection.default(retentionSection.parse({})),
    scale: scaleSection.default(scaleSection.parse({})),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.watchdog.stall_seconds <= config.agent.command_timeout_seconds) {
      ctx.addIssue({
        code: "custom",
        path: ["watchdog", "stall_seconds"],
        message: `is ${config.watchdog.stall_seconds} but [agent] command_timeout_seconds is ${config.agent.command_timeout_seconds}: a command that runs until its timeout shows no activity and would count as a stall; make stall_seconds larger`,
      });
    }
    if (config.circuit_breaker.failures > config.circuit_breaker.window) {
      ctx.addIssue({
        code: "custom",
        path: ["circuit_breaker", "failures"],
        message: `is ${config.circuit_breaker.failures} but only the last ${config.circuit_breaker.window} runs are looked at (window): make failures at most window`,
      });
    }
    if (config.sandbox.backend === "none" && !config.sandbox.allow_unsandboxed) {
      ctx.addIssue({
        code: "custom",
        path: ["sandbox", "allow_unsandboxed"],
        message:
          'must be true to use backend = "none" (runs would not be isolated); otherwise use backend = "bubblewrap"',
      });
    }
    checkProviders(config, ctx);
  })
  .transform((config) => ({
    ...config,
    agent: { ...config.agent, model: config.agent.model ?? defaultModel(config) },
  }));

export type FactoryConfig = z.output<typeof configSchema>;

type ParsedConfig = {
  providers: Record<string, ProviderSection>;
  models: Record<string, { provider: string; model?: string | undefined }>;
  model?: z.infer<typeof legacyModelSection> | undefined;
};

const PROVIDER_NAME = /^[a-z0-9][a-z0-9_-]*$/;

function checkProviders(config: ParsedConfig, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  if (config.model && Object.keys(config.providers).length > 0) {
    issue(
      ["model"],
      "is the old single-provider form: move it into [providers.<name>] (see docs/models.md) and delete [model]",
    );
  }
  if (config.model?.provider === "openai-compatible" && !config.model.base_url) {
    issue(["model", "base_url"], 'is required when provider = "openai-compatible"');
  }
  for (const [name, section] of Object.entries(config.providers)) {
    if (!PROVIDER_NAME.test(name)) {
      issue(["providers", name], "names must be lowercase letters, digits, - and _");
    }
    const kind = kindOf(name, section);
    if (!kind) {
      issue(
        ["providers", name, "kind"],
        `is required because "${name}" is not a provider kind: one of ${PROVIDER_KINDS.map((k) => `"${k}"`).join(", ")}`,
      );
      continue;
    }
    if (kind === "openai-compatible" && !section.base_url) {
      issue(
        ["providers", name, "base_url"],
        'is required for kind "openai-compatible": the URL its OpenAI SDK would take, e.g. "http://127.0.0.1:11434/v1"',
      );
    }
    if (kind !== "openai-compatible") {
      for (const key of ["protocols", "auth"] as const) {
        if (section[key] !== undefined) {
          issue(
            ["providers", name, key],
            `applies only to kind "openai-compatible", not "${kind}"`,
          );
        }
      }
    }
  }
  for (const [model, route] of Object.entries(config.models)) {
    if (!(route.provider in config.providers)) {
      const known = Object.keys(config.providers);
      issue(
        ["models", model, "provider"],
        `names no configured provider "${route.provider}"; configured: ${known.length > 0 ? known.join(", ") : "none (add a [providers.<name>] table)"}`,
      );
    }
  }
}

/** The model an agent asks for when [agent] model is not set: the first provider's usual one. */
function defaultModel(config: ParsedConfig): string {
  if (config.model) return config.model.provider === "simulator" ? "sim-demo" : "";
  for (const [name, section] of Object.entries(config.providers)) {
    const kind = kindOf(name, section);
    const model = kind && KIND_DEFAULTS[kind].defaultModel;
    if (model) return model;
  }
  return "";
}
