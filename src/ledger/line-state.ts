import type { Kysely } from "kysely";
import type { Database, LineState } from "./schema.ts";

/**
 * Whether the line is paused, shared through the ledger so every worker stops claiming and the
 * console and `nightshift status` can say why.
 */
export class LineStateRecords {
  constructor(private readonly db: Kysely<Database>) {}

  async get(): Promise<LineState> {
    const row = await this.db
      .selectFrom("line_state")
      .selectAll()
      .where("id", "=", 1)
      .executeTakeFirst();
    return row ?? { id: 1, paused: false, paused_reason: null, paused_by: null, paused_at: null };
  }

  /**
   * Pauses the line; true when this call paused it. An already paused line keeps its first reason
   * (the one a person must look at) unless `restart` renews its time (a failed probe run).
   */
  async pause(reason: string, by: string, options: { restart?: boolean } = {}): Promise<boolean> {
    const updated = await this.db
      .updateTable("line_state")
      .set({ paused: true, paused_reason: reason, paused_by: by, paused_at: new Date() })
      .where("id", "=", 1)
      .$if(!options.restart, (q) => q.where("paused", "=", false))
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) > 0;
  }

  /** Resumes the line; true when it was paused. */
  async resume(): Promise<boolean> {
    const updated = await this.db
      .updateTable("line_state")
      .set({ paused: false, paused_reason: null, paused_by: null, paused_at: null })
      .where("id", "=", 1)
      .where("paused", "=", true)
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) > 0;
  }
}
