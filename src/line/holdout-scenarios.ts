import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { HoldoutScenarioSource, OrderScenario } from "../gates/index.ts";
import type { Ledger } from "../ledger/index.ts";

/**
 * The order-bound hidden scenarios, from the two places a person puts them: the ledger (given with
 * the order: `nightshift add --holdout`, a backlog's `holdout:` field, or drafted and approved), and
 * a folder named by the order's key (or `WO-<id>`) under `<holdout dir>/orders/`, read at each run
 * so a person can add to it while the line works. Which orders count is the ledger's call: the
 * candidate's own and every landed one.
 */
export function ledgerScenarios(ledger: Ledger, holdoutDir: string): HoldoutScenarioSource {
  return async (orderId) => {
    const { owners, scenarios } = await ledger.acceptance.scenariosFor(orderId);
    const found: OrderScenario[] = scenarios.map((s) => ({
      orderId: s.order_id,
      name: s.name,
      content: s.content,
    }));
    for (const owner of owners) {
      const names = new Set(found.filter((s) => s.orderId === owner.id).map((s) => s.name));
      for (const folder of [owner.key, `WO-${owner.id}`]) {
        if (!folder) continue;
        for (const file of await filesOf(path.join(holdoutDir, "orders", folder))) {
          // The ledger's copy wins over a file of the same name; the first folder over the second.
          if (names.has(file.name)) continue;
          names.add(file.name);
          found.push({ orderId: owner.id, ...file });
        }
      }
    }
    return found;
  };
}

/** The top-level files of a scenario folder; a folder that does not exist holds none. */
async function filesOf(dir: string): Promise<{ name: string; content: string }[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const files = entries.filter((e) => e.isFile() && !e.name.startsWith(".")).map((e) => e.name);
  return Promise.all(
    files
      .sort()
      .map(async (name) => ({ name, content: await readFile(path.join(dir, name), "utf8") })),
  );
}
