import type { Kysely } from "kysely";
import { recordControl } from "./order-controls.ts";
import type { Database, LineState } from "./schema.ts";

/**
 * Whether the line takes new runs, kept in the ledger so that a pause holds for every worker
 * sharing it (several processes on PostgreSQL), not only for the process that was asked. Runs in
 * flight go on; a paused line only stops claiming.
 */
export class LineSwitch {
  constructor(private readonly db: Kysely<Database>) {}

  async state(): Promise<LineState> {
    return this.db.selectFrom("line_state").selectAll().executeTakeFirstOrThrow();
  }

  pause(actor: string, reason = ""): Promise<LineState> {
    return this.set(true, actor, reason);
  }

  resume(actor: string, reason = ""): Promise<LineState> {
    return this.set(false, actor, reason);
  }

  /**
   * Pauses the line unless it already is: the first reason is the one a person must look at. True
   * when this call paused it. With `restart`, an already paused line's pause starts again (the
   * circuit breaker's probe run failed too).
   */
  async pauseUnlessPaused(
    actor: string,
    reason: string,
    options: { restart?: boolean } = {},
  ): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const changed = await tx
        .updateTable("line_state")
        .set({ paused: true, reason, changed_by: actor, changed_at: new Date(), seen_at: null })
        .$if(!options.restart, (q) => q.where("paused", "=", false))
        .executeTakeFirst();
      if (Number(changed.numUpdatedRows) === 0) return false;
      await recordControl(tx, { action: "pause", actor, note: reason });
      return true;
    });
  }

  /** Resumes a paused line; false when it was not paused. */
  async resumeIfPaused(actor: string, reason = ""): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const changed = await tx
        .updateTable("line_state")
        .set({ paused: false, reason, changed_by: actor, changed_at: new Date(), seen_at: null })
        .where("paused", "=", true)
        .executeTakeFirst();
      if (Number(changed.numUpdatedRows) === 0) return false;
      await recordControl(tx, { action: "resume", actor, note: reason });
      return true;
    });
  }

  /** A worker skipped a claim round because the line is paused: the pause has taken hold. */
  async noticePaused(): Promise<void> {
    await this.db.updateTable("line_state").set({ seen_at: new Date() }).execute();
  }

  private async set(paused: boolean, actor: string, reason: string): Promise<LineState> {
    return this.db.transaction().execute(async (tx) => {
      const state = await tx
        .updateTable("line_state")
        .set({
          paused,
          reason: reason.trim(),
          changed_by: actor,
          changed_at: new Date(),
          seen_at: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordControl(tx, { action: paused ? "pause" : "resume", actor, note: reason });
      return state;
    });
  }
}
