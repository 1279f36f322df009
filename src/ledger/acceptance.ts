import type { Kysely } from "kysely";
import { NightshiftError } from "../errors/index.ts";
import type { BaselineCheck, Database, HoldoutScenarioRow, WorkOrder } from "./schema.ts";
import { lockOrder, recordTransition } from "./transitions.ts";

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

  /**
   * Stores scenarios a model drafted for an order, for a person to approve, and puts the order in
   * `waiting` so no agent works it meanwhile (`approve` activates them and queues it, `reject`
   * discards them and cancels it). One transaction: the order must still be queued or waiting and
   * have no active scenario; earlier drafts of the order are replaced.
   */
  async storeDrafts(
    orderId: number,
    drafts: { name: string; content: string }[],
    source = "acceptance-writer",
  ): Promise<{ order: WorkOrder; scenarios: HoldoutScenarioRow[] }> {
    return this.db.transaction().execute(async (tx) => {
      const order = await lockOrder(tx, orderId);
      if (order.status !== "queued" && order.status !== "waiting") {
        throw new NightshiftError(
          "acceptance_draft_refused",
          `cannot store drafted scenarios for WO-${orderId}: it is ${order.status}; only a queued or waiting order can get them`,
          {
            hint: "nothing was stored; cancel a running order first if its acceptance should change",
          },
        );
      }
      const active = await tx
        .selectFrom("holdout_scenarios")
        .select("name")
        .where("order_id", "=", orderId)
        .where("status", "=", "active")
        .execute();
      if (active.length > 0) {
        throw new NightshiftError(
          "acceptance_draft_refused",
          `WO-${orderId} already has ${active.length} hidden scenario(s); drafts are only for an order with none`,
          { hint: "nothing was stored" },
        );
      }
      await tx
        .deleteFrom("holdout_scenarios")
        .where("order_id", "=", orderId)
        .where("status", "in", ["draft", "rejected"])
        .execute();
      const scenarios: HoldoutScenarioRow[] = [];
      for (const d of drafts) {
        scenarios.push(
          await tx
            .insertInto("holdout_scenarios")
            .values({
              order_id: orderId,
              name: d.name,
              content: d.content,
              status: "draft",
              source,
            })
            .returningAll()
            .executeTakeFirstOrThrow(),
        );
      }
      let moved = order;
      if (order.status !== "waiting") {
        moved = await tx
          .updateTable("work_orders")
          .set({ status: "waiting", updated_at: new Date() })
          .where("id", "=", orderId)
          .returningAll()
          .executeTakeFirstOrThrow();
        await recordTransition(tx, {
          order_id: orderId,
          entity: "order",
          from_status: order.status,
          to_status: "waiting",
          message: `${drafts.length} hidden scenario(s) drafted from its acceptance criteria: waits for a person to approve or reject them`,
        });
      }
      return { order: moved, scenarios };
    });
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
