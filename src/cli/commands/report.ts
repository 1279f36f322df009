import { priceOf } from "../../gateway/prices.ts";
import { factoryReport, formatReport, gitLinesLanded } from "../../metrics/index.ts";
import { openFactory } from "../factory.ts";

/**
 * `nightshift report`: the factory's measured economics from its ledger: runs, landed changes,
 * yield, cost per landed change, compute per supervisor, tokens per landed line.
 */
export async function reportCommand(root: string, options: { json?: boolean }): Promise<string> {
  const factory = await openFactory(root, "nightshift report");
  try {
    const { economics, agent } = factory.config;
    const report = await factoryReport(factory.ledger, gitLinesLanded(factory.root), {
      supervisors: economics.supervisors,
      salaryUsd: economics.salary_usd,
    });
    if (options.json) return JSON.stringify(report, null, 2);
    return formatReport(report, priceOf(agent.model)?.simulated ?? false).join("\n");
  } finally {
    await factory.close();
  }
}
