import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText } from "ai";
import { z } from "zod";
import { NightshiftError } from "../errors/index.ts";
import type { NewWorkOrder } from "../ledger/index.ts";

/** Marks the planner's request, so a simulator policy (or a fake provider) can tell it apart. */
export const PLANNER_MARKER = "You are the planner of nightshift, a software factory.";

/** Where a planned order came from, on the order (`source`). */
export const PLANNER_SOURCE = "planner";

const KEY = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** One order as the planner must write it. */
const plannedOrderSchema = z
  .object({
    key: z.string().regex(KEY, "must be a short slug: lower-case letters, digits, '.', '_', '-'"),
    title: z.string().trim().min(1, "must not be empty").max(200, "must be at most 200 characters"),
    spec: z.string().default(""),
    acceptance: z.string().trim().min(1, "must say how to tell the order is done"),
    priority: z.number().int().min(-1000).max(1000).default(0),
    scope: z
      .array(
        z
          .string()
          .min(1)
          .refine(
            (p) => !p.startsWith("/") && !p.split("/").includes(".."),
            "must be a path inside the repository (relative, no '..')",
          ),
      )
      .default([]),
    depends_on: z.array(z.string()).default([]),
  })
  .strict();

const planSchema = z
  .object({ orders: z.array(plannedOrderSchema).min(1, "has no orders") })
  .strict();

export type PlannedOrder = z.infer<typeof plannedOrderSchema>;

/** A plan the model gave that cannot be taken as it is; nothing was added. */
export class PlanUnusableError extends NightshiftError {
  constructor(problems: string[], options: { cause?: unknown } = {}) {
    super(
      "plan_unusable",
      `the planner's answer is not a usable plan: ${problems.slice(0, 8).join("; ")}${problems.length > 8 ? `; and ${problems.length - 8} more` : ""}; nothing was added`,
      {
        hint: "run `nightshift plan` again (perhaps with --model or a more precise goal), or write the orders yourself (`nightshift add --file backlog.yaml`)",
        details: { problems },
        ...(options.cause !== undefined ? { cause: options.cause } : {}),
      },
    );
    this.name = "PlanUnusableError";
  }
}

export interface PlanRequest {
  goal: string;
  /** Model name at the gateway. */
  model: string;
  /** A factory endpoint of the gateway (metered, no run): see Gateway.openFactory. */
  endpoint: { baseURL: string; apiKey: string };
  /** What the repository holds (see `repositorySketch`), so scopes name real paths. */
  repository: string;
  /** Keys already in the ledger, which planned orders may depend on but not reuse. */
  existingKeys: string[];
  maxOrders: number;
  signal?: AbortSignal;
}

/**
 * Asks a model, through the gateway, to break a goal (or a product brief) into work orders with
 * acceptance criteria, dependencies and scopes. The answer is checked whole: any problem refuses
 * the plan, so a person never gets half of one.
 */
export async function planGoal(request: PlanRequest): Promise<PlannedOrder[]> {
  const provider = createOpenAICompatible({
    name: "nightshift-planner",
    baseURL: request.endpoint.baseURL,
    apiKey: request.endpoint.apiKey,
    includeUsage: true,
  });
  let text: string;
  try {
    const result = await generateText({
      model: provider.chatModel(request.model),
      system: systemPrompt(request.maxOrders),
      prompt: [
        "The goal:",
        request.goal,
        "",
        "The repository:",
        request.repository,
        "",
        request.existingKeys.length > 0
          ? `Keys of orders already in the factory (depend on them if useful; do not reuse them): ${request.existingKeys.join(", ")}`
          : "The factory has no orders yet.",
      ].join("\n"),
      maxRetries: 1,
      ...(request.signal ? { abortSignal: request.signal } : {}),
    });
    text = result.text;
  } catch (error) {
    if (request.signal?.aborted) throw error;
    throw new NightshiftError(
      "plan_failed",
      `the planner's model request failed: ${(error as Error).message.slice(0, 300)}; nothing was added`,
      {
        hint: "check the model name (--model, [planner] model) and `nightshift doctor`",
        cause: error,
      },
    );
  }
  return parsePlan(text, { existingKeys: request.existingKeys, maxOrders: request.maxOrders });
}

/**
 * The plan in a model's answer, checked: JSON (a ```json fence around it is allowed), the shape
 * above, unique keys, dependencies on known keys and no cycle among them, at most `maxOrders`.
 */
export function parsePlan(
  text: string,
  context: { existingKeys: string[]; maxOrders: number },
): PlannedOrder[] {
  const json = jsonIn(text);
  if (json === undefined) {
    throw new PlanUnusableError([
      `it is not JSON (it starts ${JSON.stringify(text.trim().slice(0, 80))})`,
    ]);
  }
  const parsed = planSchema.safeParse(json);
  if (!parsed.success) {
    throw new PlanUnusableError(parsed.error.issues.map((i) => `${pathOf(i.path)}: ${i.message}`));
  }
  const orders = parsed.data.orders;
  const problems: string[] = [];
  if (orders.length > context.maxOrders) {
    problems.push(
      `it has ${orders.length} orders, more than the ${context.maxOrders} allowed ([planner] max_orders)`,
    );
  }
  const keys = new Set<string>();
  const existing = new Set(context.existingKeys);
  for (const [i, order] of orders.entries()) {
    if (keys.has(order.key)) problems.push(`orders[${i}].key: "${order.key}" is used twice`);
    if (existing.has(order.key)) {
      problems.push(`orders[${i}].key: "${order.key}" is already an order's key in the factory`);
    }
    keys.add(order.key);
  }
  for (const [i, order] of orders.entries()) {
    for (const dep of order.depends_on) {
      if (!keys.has(dep) && !existing.has(dep)) {
        problems.push(`orders[${i}].depends_on: "${dep}" is no order of the plan or the factory`);
      }
    }
  }
  const cycle = findCycle(orders);
  if (cycle) problems.push(`the dependencies go round in a circle: ${cycle.join(" -> ")}`);
  if (problems.length > 0) throw new PlanUnusableError(problems);
  return orders;
}

/** The planned orders as the ledger takes them; `waiting` ones need `nightshift approve`. */
export function plannedWorkOrders(orders: PlannedOrder[], waiting: boolean): NewWorkOrder[] {
  return orders.map((o) => ({
    key: o.key,
    title: o.title,
    spec: o.spec,
    acceptance: o.acceptance,
    priority: o.priority,
    scope: o.scope,
    dependsOn: o.depends_on,
    source: PLANNER_SOURCE,
    ...(waiting ? { needsApproval: true } : {}),
  }));
}

/** The plan as a person reviews it. */
export function formatPlan(orders: PlannedOrder[]): string[] {
  return orders.flatMap((o, i) => [
    `${i + 1}. [${o.key}] ${o.title}${o.priority ? ` (priority ${o.priority})` : ""}`,
    ...(o.spec ? [`   spec: ${o.spec.replace(/\n/g, "\n         ")}`] : []),
    `   acceptance: ${o.acceptance.replace(/\n/g, "\n               ")}`,
    `   scope: ${o.scope.length > 0 ? o.scope.join(", ") : "(anywhere)"}`,
    ...(o.depends_on.length > 0 ? [`   after: ${o.depends_on.join(", ")}`] : []),
  ]);
}

function jsonIn(text: string): unknown {
  const fenced = /```(?:json)?\s*\n([\s\S]*?)\n\s*```/.exec(text);
  const candidate = (fenced?.[1] ?? text).trim();
  try {
    return JSON.parse(candidate);
  } catch {
    return undefined;
  }
}

function pathOf(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path)
    out += typeof key === "number" ? `[${key}]` : out ? `.${String(key)}` : String(key);
  return out || "(the answer)";
}

function findCycle(orders: PlannedOrder[]): string[] | undefined {
  const deps = new Map(orders.map((o) => [o.key, o.depends_on]));
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (key: string): string[] | undefined => {
    if (state.get(key) === "done" || !deps.has(key)) return undefined;
    if (state.get(key) === "visiting") return [...stack.slice(stack.indexOf(key)), key];
    state.set(key, "visiting");
    stack.push(key);
    for (const dep of deps.get(key) ?? []) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(key, "done");
    return undefined;
  };
  for (const o of orders) {
    const cycle = visit(o.key);
    if (cycle) return cycle;
  }
  return undefined;
}

function systemPrompt(maxOrders: number): string {
  return `${PLANNER_MARKER}
Break the goal you are given into 1 to ${maxOrders} work orders that coding agents will carry out one
by one, each in its own branch, each landing only when the repository's tests pass. Each order is a
small change a competent engineer would make in under an hour. For each give:
- "key": a short slug other orders can name,
- "title": one line, imperative ("Add slugify(text)"),
- "spec": what to do, precisely enough to do it without asking,
- "acceptance": how to tell it is done (observable behaviour, tests that must pass),
- "priority": an integer, higher runs first (default 0),
- "scope": the paths (files, folders ending in "/", or globs) the order may touch; orders with
  overlapping scopes are not worked at the same time, so keep them narrow,
- "depends_on": keys of orders that must land first.
Answer with JSON only: {"orders": [{"key": "...", "title": "...", "spec": "...", "acceptance": "...", "priority": 0, "scope": ["src/..."], "depends_on": []}]}`;
}
