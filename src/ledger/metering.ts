import { type Kysely, sql } from "kysely";
import {
  type ReleasedReservation,
  type SpendGroup,
  settleBudgets,
  settleSpend,
} from "./budgets.ts";
import { withoutNul } from "./runs.ts";
import type { Database, ModelRequest, ModelRequestDeadLetter, NewModelRequest } from "./schema.ts";

export interface SpendTotals {
  costUsd: number;
  tokens: number;
  requests: number;
}

/** Every metered model request: written in batches by the gateway, read by reports and budgets. */
export class Metering {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Records a batch of metered model requests, adds their usage to their runs and to their budget
   * accounts, and releases what they had reserved, in one transaction: a request is either fully
   * metered or not at all (and then retried by the caller). The unique request_id makes a retried
   * batch idempotent.
   */
  async recordModelRequests(rows: NewModelRequest[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      // One statement: the rows go in (one JSON parameter instead of fifteen per row: on the
      // embedded ledger much faster), their reservations are released, and what comes back is
      // their spend summed by run, order and reservation day, not every row: reading a row back
      // per metered request cost the embedded ledger more than writing it.
      const result = await sql<{
        spent: MeteredGroup[] | string;
        released: ReleasedReservation[] | string;
      }>`
        with inserted as (
          insert into model_requests (request_id, run_id, order_id, protocol, model, status, stream,
            input_tokens, output_tokens, cached_input_tokens, cost_usd, usage_estimated, latency_ms,
            attempts, error)
          select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(request_id text,
            run_id integer, order_id integer, protocol text, model text, status integer,
            stream boolean, input_tokens integer, output_tokens integer, cached_input_tokens integer,
            cost_usd double precision, usage_estimated boolean, latency_ms integer, attempts integer,
            error text)
          on conflict (request_id) do nothing
          returning request_id, run_id, order_id, input_tokens, output_tokens, cost_usd),
        released as (
          delete from budget_reservations b using inserted i where b.request_id = i.request_id
          returning b.request_id, b.accounts, b.tokens::float8 as tokens, b.usd, b.day)
        select
          (select coalesce(jsonb_agg(g), '[]'::jsonb) from (
            select i.run_id, i.order_id, r.day,
              sum(i.input_tokens)::float8 as input_tokens,
              sum(i.output_tokens)::float8 as output_tokens,
              sum(i.input_tokens + i.output_tokens)::float8 as tokens,
              sum(i.cost_usd)::float8 as cost_usd
            from inserted i left join released r on r.request_id = i.request_id
            group by i.run_id, i.order_id, r.day) g) as spent,
          (select coalesce(jsonb_agg(jsonb_build_object('accounts', accounts, 'tokens', tokens,
            'usd', usd, 'day', day)), '[]'::jsonb) from released) as released`
        .execute(tx)
        .then((r) => r.rows[0]);
      const spent = parsed<MeteredGroup[]>(result?.spent);
      const released = parsed<ReleasedReservation[]>(result?.released);
      const perRun = new Map<number, { input: number; output: number; cost: number }>();
      for (const group of spent) {
        if (group.run_id === null) continue;
        const sum = perRun.get(group.run_id) ?? { input: 0, output: 0, cost: 0 };
        sum.input += Number(group.input_tokens);
        sum.output += Number(group.output_tokens);
        sum.cost += Number(group.cost_usd);
        perRun.set(group.run_id, sum);
      }
      for (const [runId, sum] of perRun) {
        await tx
          .updateTable("runs")
          .set((eb) => ({
            input_tokens: eb("input_tokens", "+", sum.input),
            output_tokens: eb("output_tokens", "+", sum.output),
            cost_usd: eb("cost_usd", "+", sum.cost),
          }))
          .where("id", "=", runId)
          .execute();
      }
      await settleSpend(tx, released, spent);
    });
  }

  /**
   * Keeps a metered row the ledger refuses (with the reason) and releases its reservation, so one
   * bad row cannot hold back the rows behind it.
   */
  async deadLetterModelRequest(row: NewModelRequest, reason: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto("model_request_dead_letters")
        .values({
          request_id: row.request_id,
          row: JSON.stringify(row, withoutNul),
          reason: reason.replaceAll("\0", ""),
        })
        .execute();
      await settleBudgets(tx, [
        {
          request_id: row.request_id,
          run_id: null,
          order_id: null,
          input_tokens: 0,
          output_tokens: 0,
          cost_usd: 0,
        },
      ]);
    });
  }

  async listDeadLetters(): Promise<ModelRequestDeadLetter[]> {
    return this.db.selectFrom("model_request_dead_letters").selectAll().orderBy("id").execute();
  }

  async spend(scope: { orderId?: number; runId?: number; since?: Date }): Promise<SpendTotals> {
    let query = this.db
      .selectFrom("model_requests")
      .select((eb) => [
        eb.fn.coalesce(eb.fn.sum<string>("cost_usd"), sql<string>`0`).as("cost"),
        eb.fn.coalesce(eb.fn.sum<string>("input_tokens"), sql<string>`0`).as("input"),
        eb.fn.coalesce(eb.fn.sum<string>("output_tokens"), sql<string>`0`).as("output"),
        eb.fn.countAll<string>().as("requests"),
      ]);
    if (scope.orderId !== undefined) query = query.where("order_id", "=", scope.orderId);
    if (scope.runId !== undefined) query = query.where("run_id", "=", scope.runId);
    if (scope.since) query = query.where("at", ">=", scope.since);
    const row = await query.executeTakeFirstOrThrow();
    return {
      costUsd: Number(row.cost),
      tokens: Number(row.input) + Number(row.output),
      requests: Number(row.requests),
    };
  }

  async listModelRequests(runId?: number): Promise<ModelRequest[]> {
    let query = this.db.selectFrom("model_requests").selectAll();
    if (runId !== undefined) query = query.where("run_id", "=", runId);
    return query.orderBy("id").execute();
  }
}

/** Metered rows summed by run, order and reservation day. */
type MeteredGroup = SpendGroup & { input_tokens: number; output_tokens: number };

/** A jsonb value as the driver returns it: parsed already (pg, PGlite) or as text. */
function parsed<T>(value: T | string | undefined): T {
  if (value === undefined) return [] as T;
  return typeof value === "string" ? (JSON.parse(value) as T) : value;
}
