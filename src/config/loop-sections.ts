import { z } from "zod";

/**
 * The sections of nightshift.toml for the perpetual loop: what the line does when its queue runs
 * dry ([perpetual]), how goals become orders ([planner]), how claims avoid colliding scopes
 * ([scheduler]) and the figures `econ` and `report` use ([economics]).
 */

export const economicsSection = z
  .object({
    /** An engineer's cost per year in US dollars: what `econ` and `report` compare spend with. */
    salary_usd: z.number().positive("must be a positive amount of US dollars").default(250_000),
    /** People supervising the line: `report` divides the compute among them. */
    supervisors: z.number().int().min(1).max(10_000).default(1),
  })
  .strict();

export const plannerSection = z
  .object({
    /** The planner's model at the gateway; empty uses [agent] model. */
    model: z.string().default(""),
    /** Most orders one plan may hold. */
    max_orders: z.number().int().min(1).max(100).default(20),
  })
  .strict();

export const schedulerSection = z
  .object({
    /**
     * "separate": an order is not claimed while a running order's scope overlaps its own;
     * "ignore": scopes do not hold anything back.
     */
    scopes: z.enum(["separate", "ignore"]).default("separate"),
    /**
     * An order with no scope may touch anything. "parallel": it holds nothing back and nothing
     * holds it back (as before scopes were checked); "exclusive": it runs alone.
     */
    unscoped: z.enum(["parallel", "exclusive"]).default("parallel"),
  })
  .strict();

export const PERPETUAL_SOURCES = ["goals", "tests", "defects", "todo", "lint", "coverage"] as const;
export type PerpetualSource = (typeof PERPETUAL_SOURCES)[number];

/** How a lint or type-check command's output is read (src/orders/perpetual/findings.ts). */
export const FINDING_FORMATS = [
  "auto",
  "tsc",
  "eslint-json",
  "biome-json",
  "github",
  "eslint-compact",
  "generic",
] as const;
export type FindingFormat = (typeof FINDING_FORMATS)[number];

export const COVERAGE_FORMATS = ["auto", "istanbul-summary", "lcov"] as const;
export const COVERAGE_METRICS = ["lines", "statements", "branches", "functions"] as const;

const oneOf = (values: readonly string[]) =>
  `must be one of ${values.map((v) => `"${v}"`).join(", ")}`;
const timeoutSeconds = z
  .number()
  .positive("must be a positive number of seconds")
  .max(86_400, "must be at most 86400 (a day)");

const lintCommand = z
  .object({
    /** Names the check in the orders' source ("lint:<name>:<file>"), e.g. "types", "eslint". */
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'must be a word like "types" or "eslint"'),
    /** A bash command line, run as it is (nothing is put into it) in a fresh checkout. */
    command: z.string().trim().min(1, "is empty: give the command line to run"),
    format: z.enum(FINDING_FORMATS, { error: oneOf(FINDING_FORMATS) }).default("auto"),
  })
  .strict();

const lintSection = z
  .object({
    /** The checks whose findings, file by file, become orders (source "lint"). */
    commands: z
      .array(lintCommand)
      .refine(
        (commands) => new Set(commands.map((c) => c.name)).size === commands.length,
        "names a command twice: give each a name of its own",
      )
      .default([]),
    timeout_seconds: timeoutSeconds.default(600),
  })
  .strict();

const coverageSection = z
  .object({
    /**
     * Run in a fresh checkout of the landing branch to write the report there; empty: the report
     * is read from the repository's folder as your own test runs or CI left it.
     */
    command: z.string().default(""),
    /** The report, relative to the checkout: an istanbul/c8/vitest summary JSON or an lcov file. */
    report: z
      .string()
      .min(1)
      .refine(
        (p) => !p.startsWith("/") && !p.split(/[\\/]/).includes(".."),
        'must be a path inside the repository, e.g. "coverage/coverage-summary.json"',
      )
      .default("coverage/coverage-summary.json"),
    /** "auto": a .json report is an istanbul summary, anything else lcov. */
    format: z.enum(COVERAGE_FORMATS, { error: oneOf(COVERAGE_FORMATS) }).default("auto"),
    metric: z.enum(COVERAGE_METRICS, { error: oneOf(COVERAGE_METRICS) }).default("lines"),
    /** Files covered below this percentage become orders. */
    threshold: z
      .number()
      .gt(0, "must be a percentage above 0")
      .max(100, "must be a percentage, at most 100")
      .default(80),
    timeout_seconds: timeoutSeconds.default(900),
  })
  .strict()
  .superRefine((section, ctx) => {
    if (section.format === "lcov" && section.metric === "statements") {
      ctx.addIssue({
        code: "custom",
        path: ["metric"],
        message: 'lcov has no statement counts: use "lines", "branches" or "functions"',
      });
    }
  });

export const perpetualSection = z
  .object({
    /** Where `run --forever` finds work when the queue is dry; empty: it only waits. */
    sources: z
      .array(z.enum(PERPETUAL_SOURCES, { error: oneOf(PERPETUAL_SOURCES) }))
      .refine((names) => new Set(names).size === names.length, "lists a source twice")
      .default([]),
    /** Generated orders wait for `nightshift approve` (true) or are queued at once (false). */
    approval: z.boolean().default(true),
    /** A goals file (relative to the repository): one goal per "- " line. */
    goals_file: z.string().min(1).default("GOALS.md"),
    /** Markers the todo source looks for in the committed tree. */
    todo_markers: z
      .array(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, "must be a word like TODO"))
      .min(1)
      .default(["TODO", "FIXME"]),
    /** Most orders one round of finding work adds. */
    max_orders_per_round: z.number().int().min(1).max(50).default(3),
    /** Least time between two rounds, so an idle line does not rescan on every poll. */
    interval_minutes: z.number().min(0).max(10_080).default(10),
    lint: lintSection.default(lintSection.parse({})),
    coverage: coverageSection.default(coverageSection.parse({})),
  })
  .strict()
  .superRefine((section, ctx) => {
    if (section.sources.includes("lint") && section.lint.commands.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["lint", "commands"],
        message:
          'is empty, but sources lists "lint": add a check, e.g. commands = [{ name = "types", command = "npx tsc --noEmit --pretty false", format = "tsc" }]',
      });
    }
  });

export const githubSection = z
  .object({
    /** The repository, "owner/name"; empty: no GitHub. */
    repo: z
      .string()
      .regex(/^$|^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'must be "owner/name", e.g. "acme/shop"')
      .default(""),
    /** The REST API root; for GitHub Enterprise Server "https://HOST/api/v3". */
    base_url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. "https://api.github.com"' })
      .default("https://api.github.com"),
    /** The environment variable holding the token (never the token itself). */
    token_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must name an environment variable, e.g. GITHUB_TOKEN")
      .default("GITHUB_TOKEN"),
    /** Open issues with any of these labels become work orders; empty: no intake. */
    labels: z.array(z.string().min(1)).default([]),
    /** Issues taken in wait for `nightshift approve` (a label is already a person's say-so). */
    approval: z.boolean().default(false),
    /** How often a running line looks for newly labelled issues. */
    interval_minutes: z.number().min(0.1).max(1_440).default(5),
    /**
     * What the line does with a gate-passed candidate: "merge" lands it on the branch (the merge
     * queue); "pull_request" pushes it to `remote` and opens a pull request (the order ends
     * "proposed").
     */
    output: z.enum(["merge", "pull_request"]).default("merge"),
    /** The git remote candidates are pushed to in pull-request mode. */
    remote: z.string().min(1).default("origin"),
  })
  .strict()
  .superRefine((section, ctx) => {
    if (section.output === "pull_request" && !section.repo) {
      ctx.addIssue({
        code: "custom",
        path: ["repo"],
        message:
          'is required for output = "pull_request": the repository to open them in, "owner/name"',
      });
    }
  });
