import { readFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { DRIVER_NAMES } from "../agents/driver-names.ts";
import type { NewWorkOrder } from "../ledger/index.ts";
import { OrderInputError } from "./errors.ts";
import { readScenarioFiles } from "./holdout-files.ts";

const keyPattern = /^[a-z0-9][a-z0-9._-]*$/i;

const driverList = DRIVER_NAMES.map((n) => `"${n}"`).join(", ");

/** An order's own agent driver and model; left out, the factory's [agent] driver and model. */
const orderAgentShape = {
  driver: z
    .enum(DRIVER_NAMES, {
      error: `must be one of ${driverList} (leave it out for the factory's [agent] driver)`,
    })
    .optional(),
  model: z
    .string({ error: "must be a model name, as text" })
    .trim()
    .min(1, "must not be empty (leave it out for the factory's [agent] model)")
    .optional(),
};

/** One work order as a person writes it (backlog file or CLI flags). */
export const orderInputSchema = z
  .object({
    title: z.string().trim().min(1, "must not be empty").max(200, "must be at most 200 characters"),
    spec: z.string().default(""),
    acceptance: z.string().default(""),
    priority: z.number().int("must be a whole number").min(-1000).max(1000).default(0),
    scope: z.array(z.string().min(1)).default([]),
    key: z.string().regex(keyPattern, "must be letters, digits, '.', '_' or '-'").optional(),
    depends_on: z.array(z.string().regex(keyPattern, "must name another order's key")).default([]),
    max_attempts: z.number().int().min(1).max(20).optional(),
    budget_tokens: z.number().int().positive().optional(),
    /** Hidden acceptance scenarios: files or folders, relative to the backlog file. */
    holdout: z
      .union(
        [z.string().min(1), z.array(z.string().min(1)).min(1, "must list at least one path")],
        {
          error: "must be a path or a list of paths to scenario files or folders",
        },
      )
      .optional(),
    /** Waits for a person's `nightshift approve` before it is queued. */
    needs_approval: z.boolean({ error: "must be true or false" }).default(false),
    ...orderAgentShape,
  })
  .strict();

const backlogSchema = z.union([
  z.object({ orders: z.array(orderInputSchema).min(1, "must list at least one order") }).strict(),
  z.array(orderInputSchema).min(1, "must list at least one order"),
]);

export type OrderInput = z.input<typeof orderInputSchema>;

export { OrderInputError };

/** Validates one order from CLI flags; holdout paths are relative to `baseDir`. */
export function parseOrder(
  input: unknown,
  source = "the order",
  baseDir = process.cwd(),
): NewWorkOrder {
  const result = orderInputSchema.safeParse(input);
  if (!result.success) {
    throw new OrderInputError(
      `${source} is invalid:\n${formatIssues(result.error.issues, input)}`,
      "see `nightshift add --help` for the fields an order takes",
    );
  }
  return toNewWorkOrder(result.data, "cli", baseDir, source);
}

/**
 * Reads a backlog file (YAML or JSON: a list of orders, or `orders:` holding one) and validates
 * every order before any is added, so a bad file adds nothing.
 */
export async function readBacklog(file: string): Promise<NewWorkOrder[]> {
  const name = path.basename(file);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new OrderInputError(
      `cannot read backlog file ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      "check the path",
    );
  }
  return parseBacklog(text, name, path.dirname(path.resolve(file)));
}

/** `baseDir`: where the orders' holdout paths are relative to (the backlog file's folder). */
export function parseBacklog(
  text: string,
  name = "backlog",
  baseDir = process.cwd(),
): NewWorkOrder[] {
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    const where = first?.linePos?.[0] ? `:${first.linePos[0].line}:${first.linePos[0].col}` : "";
    throw new OrderInputError(
      `${name}${where}: not valid YAML/JSON: ${first?.message.split("\n")[0]}`,
      "fix the syntax there; nothing was added",
    );
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) {
    throw new OrderInputError(
      `${name} is empty: it lists no orders`,
      'write one order per list item ("- title: ..."), or put the list under "orders:"',
    );
  }
  if (typeof data === "object" && !Array.isArray(data) && !("orders" in data)) {
    throw new OrderInputError(
      `${name} is invalid: expected a list of orders, found a mapping with keys ${Object.keys(data)
        .map((k) => `"${k}"`)
        .join(", ")}`,
      'write each order as a list item ("- title: ..."), or put the list under "orders:". Nothing was added',
    );
  }
  const result = backlogSchema.safeParse(data);
  if (!result.success) {
    throw new OrderInputError(
      `${name} is invalid:\n${formatIssues(bestIssues(result.error.issues), data)}`,
      'a backlog is a list of orders (or "orders:" holding one); each needs a title. Nothing was added',
    );
  }
  const orders = Array.isArray(result.data) ? result.data : result.data.orders;
  return orders.map((order, i) =>
    toNewWorkOrder(
      order,
      `file:${name}`,
      baseDir,
      `${name}: order ${i + 1} (${JSON.stringify(order.title)})`,
    ),
  );
}

function toNewWorkOrder(
  order: z.output<typeof orderInputSchema>,
  source: string,
  baseDir: string,
  where: string,
): NewWorkOrder {
  const holdout =
    order.holdout === undefined
      ? []
      : readScenarioFiles(
          typeof order.holdout === "string" ? [order.holdout] : order.holdout,
          baseDir,
          where,
        );
  return {
    title: order.title,
    spec: order.spec,
    acceptance: order.acceptance,
    priority: order.priority,
    scope: order.scope,
    dependsOn: order.depends_on,
    source,
    ...(order.key ? { key: order.key } : {}),
    ...(order.max_attempts ? { maxAttempts: order.max_attempts } : {}),
    ...(order.budget_tokens ? { budgetTokens: order.budget_tokens } : {}),
    ...(order.driver ? { driver: order.driver } : {}),
    ...(order.model ? { model: order.model } : {}),
    ...(holdout.length > 0 ? { holdout } : {}),
    ...(order.needs_approval ? { needsApproval: true } : {}),
  };
}

const inboxOrderSchema = z.object(orderAgentShape);

/**
 * Checks the driver and model of orders that arrive already parsed (an inbox file, which anyone
 * can drop there), all before any is added: the line would otherwise find a bad name only when a
 * run of the order starts.
 */
export function checkOrderAgents(orders: NewWorkOrder[], source: string): void {
  const problems = orders.flatMap((order, index) => {
    const result = inboxOrderSchema.safeParse({ driver: order.driver, model: order.model });
    return result.success
      ? []
      : result.error.issues.map((issue) => ({
          ...issue,
          path: [index, ...issue.path],
        }));
  });
  if (problems.length > 0) {
    throw new OrderInputError(
      `${source} is invalid:\n${formatIssues(problems, orders)}`,
      "fix the order's driver or model and add it again; nothing was added",
    );
  }
}

/** A union's errors are reported for the branch the input most resembles. */
function bestIssues(issues: z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const union = issues.find((issue) => issue.code === "invalid_union");
  if (union?.code !== "invalid_union") return issues;
  const branches = union.errors.filter((branch) => branch.length > 0);
  branches.sort((a, b) => depth(b) - depth(a));
  return branches[0] ?? issues;
}

function depth(issues: z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((issue) => issue.path.length));
}

function formatIssues(issues: z.core.$ZodIssue[], input: unknown): string {
  return issues
    .map((issue) => `  - ${formatPath(issue.path, input)}: ${issueMessage(issue, input)}`)
    .join("\n");
}

function issueMessage(issue: z.core.$ZodIssue, input: unknown): string {
  if (issue.code === "unrecognized_keys") {
    return `unknown field ${issue.keys.map((k) => `"${k}"`).join(", ")} (known: ${Object.keys(orderInputSchema.shape).join(", ")})`;
  }
  const got = valueAt(input, issue.path);
  if (got === undefined && issue.code === "invalid_type") return "is required";
  const shown = got === undefined || typeof got === "object" ? "" : ` (got ${JSON.stringify(got)})`;
  return `${issue.message}${shown}`;
}

/**
 * Where a problem is, as a person counts: `order 2 ("Add slugify"), field "priority"` for an order
 * of a backlog (numbered from 1, with its title when it has one), `field "priority"` for one order.
 */
function formatPath(parts: PropertyKey[], input: unknown): string {
  if (parts.length === 0) return "the file";
  const at =
    typeof parts[0] === "number"
      ? 0
      : parts[0] === "orders" && typeof parts[1] === "number"
        ? 1
        : -1;
  const field = (rest: PropertyKey[]) =>
    rest.length === 0
      ? ""
      : `field "${rest.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("")}"`;
  if (at < 0) return field(parts);
  const index = parts[at] as number;
  const order = valueAt(input, parts.slice(0, at + 1));
  const title =
    order && typeof order === "object" && "title" in order && typeof order.title === "string"
      ? order.title.trim()
      : "";
  const rest = parts.slice(at + 1);
  return `order ${index + 1}${title ? ` (${JSON.stringify(title)})` : ""}${rest.length > 0 ? `, ${field(rest)}` : ""}`;
}

function valueAt(input: unknown, keyPath: PropertyKey[]): unknown {
  let node = input;
  for (const part of keyPath) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}
