import path from "node:path";
import type { DraftedScenario } from "../../gates/index.ts";
import { draftOrderAcceptance } from "../../line/index.ts";
import { type Factory, openFactory, startModels } from "../factory.ts";
import { findOrder } from "./controls.ts";

/**
 * `nightshift draft-acceptance ORDER [--model M]`: a model drafts the order's hidden scenarios
 * from its acceptance criteria; they are printed for the person who asked (never shown to an
 * agent) and the order waits for `nightshift approve` or `reject`.
 */
export async function draftAcceptanceCommand(
  root: string,
  ref: string,
  options: { model?: string },
): Promise<string> {
  const factory = await openFactory(root, "nightshift draft-acceptance");
  try {
    const order = await findOrder(factory.ledger, ref);
    const [result] = await draftFor(factory, [order.id], options.model);
    return result as string;
  } finally {
    await factory.close();
  }
}

/**
 * Drafts hidden scenarios for each order in turn, through one gateway started for the purpose;
 * says for each what was drafted (with the files), or why not.
 */
export async function draftFor(
  factory: Factory,
  orderIds: number[],
  model?: string,
): Promise<string[]> {
  const { config } = factory;
  const holdout = config.gates.holdout;
  const models = await startModels(factory);
  try {
    const lines: string[] = [];
    for (const id of orderIds) {
      const { order, scenarios } = await draftOrderAcceptance(
        {
          ledger: factory.ledger,
          models: models.gateway,
          repoPath: factory.root,
          branch: config.factory.branch,
          holdoutDir: path.resolve(factory.stateDir, holdout.dir),
          command: holdout.command,
          target: holdout.target,
        },
        id,
        model || holdout.acceptance_model || config.agent.model,
      );
      lines.push(describe(order.id, order.title, scenarios, models.simulated));
    }
    return lines;
  } finally {
    await models.close();
  }
}

function describe(id: number, title: string, scenarios: DraftedScenario[], simulated: boolean) {
  return [
    `WO-${id} waits for approval: ${scenarios.length} hidden scenario(s) drafted from its acceptance criteria${simulated ? " (by the simulator: a labelled stand-in)" : ""}: ${title}`,
    "review them below, then `nightshift approve WO-" +
      `${id}\` (they judge its candidates) or \`nightshift reject WO-${id}\` (discarded, order cancelled)`,
    ...scenarios.flatMap((s) => [`--- ${s.name}`, s.content.replace(/\n$/, "")]),
  ].join("\n");
}
