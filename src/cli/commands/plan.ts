import { readFile } from "node:fs/promises";
import path from "node:path";
import { InvalidArgumentError } from "commander";
import { formatPlan, planGoal, plannedWorkOrders, repositorySketch } from "../../orders/index.ts";
import { openFactory, startModels } from "../factory.ts";

export interface PlanOptions {
  file?: string;
  model?: string;
  yes?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

/**
 * `nightshift plan "goal"`: a model (through the gateway, metered as the factory's own request)
 * breaks a goal or a product brief into work orders. They are shown, then added all or nothing:
 * waiting for `nightshift approve` by default, queued at once with --yes, not at all with
 * --dry-run. A plan with any problem is refused whole.
 */
export async function planCommand(
  root: string,
  goalArg: string | undefined,
  options: PlanOptions,
): Promise<string> {
  if (options.yes && options.dryRun) {
    throw new InvalidArgumentError("give --yes or --dry-run, not both.");
  }
  const goal = options.file
    ? await readFile(path.resolve(options.file), "utf8").catch((error: NodeJS.ErrnoException) => {
        throw new InvalidArgumentError(`cannot read the brief ${options.file}: ${error.code}.`);
      })
    : (goalArg ?? "");
  if (!goal.trim()) {
    throw new InvalidArgumentError(
      'give a goal (nightshift plan "Add CSV export") or a brief (--file brief.md).',
    );
  }
  const factory = await openFactory(root, "nightshift plan");
  try {
    const { config, ledger } = factory;
    const existingKeys = (await ledger.listOrders()).flatMap((o) => (o.key ? [o.key] : []));
    const repository = await repositorySketch(factory.root, config.factory.branch);
    const models = await startModels(factory);
    let planned: Awaited<ReturnType<typeof planGoal>>;
    try {
      const endpoint = models.gateway.openFactory(null);
      try {
        planned = await planGoal({
          goal,
          model: options.model || config.planner.model || config.agent.model,
          endpoint,
          repository,
          existingKeys,
          maxOrders: config.planner.max_orders,
        });
      } finally {
        await endpoint.close();
      }
    } finally {
      await models.close();
    }
    const label = models.simulated ? " (by the simulator: a labelled stand-in)" : "";
    if (options.dryRun) {
      if (options.json) return JSON.stringify({ planned, added: [] }, null, 2);
      return [
        `plan${label}: ${planned.length} order(s), none added (--dry-run)`,
        ...formatPlan(planned),
      ].join("\n");
    }
    const added = await ledger.addOrders(plannedWorkOrders(planned, !options.yes));
    if (options.json) return JSON.stringify({ planned, added }, null, 2);
    return [
      `plan${label}: ${planned.length} order(s)`,
      ...formatPlan(planned),
      ...added.map(
        (o) =>
          `${o.status === "waiting" ? "waiting for approval" : "queued"} WO-${o.id}: ${o.title}`,
      ),
      ...(options.yes
        ? []
        : [
            "review them, then `nightshift approve WO-<id>` each to queue it (or `nightshift reject WO-<id>`); `nightshift plan --yes` queues a plan at once",
          ]),
    ].join("\n");
  } finally {
    await factory.close();
  }
}
