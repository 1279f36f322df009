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
