import { z } from "zod";

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

export const agentSection = z
  .object({
    driver: z.enum(["builtin"]).default("builtin"),
    model: z.string().min(1).default("sim-demo"),
    max_steps: z.number().int().min(1).max(500).default(30),
    command_timeout_seconds: z.number().positive().max(86_400).default(300),
  })
  .strict();

export const modelSection = z
  .object({
    provider: z.enum(["simulator", "openai-compatible"]).default("simulator"),
    base_url: z.url().optional(),
    api_key_env: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, "must be an environment variable name such as OPENAI_API_KEY")
      .default("OPENAI_API_KEY"),
  })
  .strict();

export const simulatorSection = z
  .object({
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

export const gatesSection = z
  .object({
    test: z.string().min(1).default("npm test"),
    timeout_seconds: z.number().positive().max(86_400).default(600),
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

export const configSchema = z
  .object({
    factory: factorySection.default(factorySection.parse({})),
    agent: agentSection.default(agentSection.parse({})),
    model: modelSection.default(modelSection.parse({})),
    simulator: simulatorSection.default(simulatorSection.parse({})),
    line: lineSection.default(lineSection.parse({})),
    gates: gatesSection.default(gatesSection.parse({})),
    budget: budgetSection.default(budgetSection.parse({})),
    gateway: gatewaySection.default(gatewaySection.parse({})),
    workspace: workspaceSection.default(workspaceSection.parse({})),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.model.provider === "openai-compatible" && !config.model.base_url) {
      ctx.addIssue({
        code: "custom",
        path: ["model", "base_url"],
        message: 'is required when provider = "openai-compatible"',
      });
    }
  });

export type FactoryConfig = z.infer<typeof configSchema>;
