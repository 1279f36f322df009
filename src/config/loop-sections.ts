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

export const PERPETUAL_SOURCES = ["goals", "tests", "defects", "todo"] as const;
export type PerpetualSource = (typeof PERPETUAL_SOURCES)[number];

export const perpetualSection = z
  .object({
    /** Where `run --forever` finds work when the queue is dry; empty: it only waits. */
    sources: z
      .array(
        z.enum(PERPETUAL_SOURCES, {
          error: `must be one of ${PERPETUAL_SOURCES.map((s) => `"${s}"`).join(", ")}`,
        }),
      )
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
  })
  .strict();

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
