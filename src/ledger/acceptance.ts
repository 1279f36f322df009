import type { Kysely } from "kysely";
import type { BaselineCheck, Database, HoldoutScenarioRow } from "./schema.ts";

/** An order whose hidden scenarios judge a candidate: its own, or one that already landed. */
export interface ScenarioOwner {
  id: number;
  key: string | null;
  landed: boolean;
}

/**
 * The ledger's side of acceptance: each order's hidden scenarios, and the checks of main itself
 * against the gates (the baseline).
 */
export class AcceptanceRecords {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * The orders whose scenarios judge a candidate of `orderId`, and their active scenarios: the
   * order's own, plus those of every landed order, so that a later change cannot undo an accepted
   * one. Without an order (main itself, a merge-queue stack) only the landed orders'.
   */
  async scenariosFor(
    orderId?: number,
  ): Promise<{ owners: ScenarioOwner[]; scenarios: HoldoutScenarioRow[] }> {
    const rows = await this.db
      .selectFrom("work_orders")
      .select(["id", "key", "status"])
      .where((eb) =>
        eb.or([
          eb("status", "=", "landed"),
          ...(orderId !== undefined ? [eb("id", "=", orderId)] : []),
        ]),
      )
      .orderBy("id")
      .execute();
    const owners = rows.map((r) => ({ id: r.id, key: r.key, landed: r.status === "landed" }));
    const scenarios =
      owners.length === 0
        ? []
        : await this.db
            .selectFrom("holdout_scenarios")
            .selectAll()
            .where("status", "=", "active")
            .where(
              "order_id",
              "in",
              owners.map((o) => o.id),
            )
            .orderBy("order_id")
            .orderBy("name")
            .execute();
    return { owners, scenarios };
  }

  /** Every scenario of one order, whatever its status (for a person's review). */
  async listScenarios(orderId: number): Promise<HoldoutScenarioRow[]> {
    return this.db
      .selectFrom("holdout_scenarios")
      .selectAll()
      .where("order_id", "=", orderId)
      .orderBy("name")
      .execute();
  }

  async recordBaseline(check: {
    commit: string;
    tree: string;
    passed: boolean;
    cause?: string;
  }): Promise<BaselineCheck> {
    return this.db
      .insertInto("baseline_checks")
      .values({
        commit_sha: check.commit,
        tree_sha: check.tree,
        passed: check.passed,
        cause: check.cause ?? "",
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** The most recent check of main, if any: when it failed, why the line is paused. */
  async latestBaseline(): Promise<BaselineCheck | undefined> {
    return this.db
      .selectFrom("baseline_checks")
      .selectAll()
      .orderBy("id", "desc")
      .limit(1)
      .executeTakeFirst();
  }
}
