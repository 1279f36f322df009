import { type Kysely, sql } from "kysely";
import type { Database, WorkerRow, WorkerState } from "./schema.ts";

/** A worker as `status` shows it: its row, how many runs it holds, and whether it still beats. */
export interface WorkerView extends WorkerRow {
  runs: number;
  /** Seconds since its last heartbeat, by the database's clock. */
  silentSeconds: number;
}

/**
 * The roster of workers sharing the ledger, and the single merge leader among them (migration
 * 0009). Times come from the database's clock: workers on several hosts must agree on when a lease
 * ran out, and their own clocks may not.
 */
export class WorkerRoster {
  constructor(private readonly db: Kysely<Database>) {}

  /** Registers (or re-registers, after a restart under the same id) a worker as working. */
  async register(worker: {
    id: string;
    host: string;
    pid: number;
    concurrency: number;
  }): Promise<void> {
    await sql`
      insert into workers (id, host, pid, concurrency, state, started_at, heartbeat_at, stopped_at)
      values (${worker.id}, ${worker.host}, ${worker.pid}, ${worker.concurrency}, 'working', now(), now(), null)
      on conflict (id) do update set host = excluded.host, pid = excluded.pid,
        concurrency = excluded.concurrency, state = 'working', started_at = now(),
        heartbeat_at = now(), stopped_at = null`.execute(this.db);
  }

  /** Renews the worker's heartbeat. */
  async beat(id: string): Promise<void> {
    await sql`update workers set heartbeat_at = now() where id = ${id}`.execute(this.db);
  }

  /** 'draining' (stopped claiming, finishing its runs) or 'stopped' (gone for good). */
  async setState(id: string, state: Exclude<WorkerState, "working">): Promise<void> {
    await sql`
      update workers set state = ${state}, heartbeat_at = now(),
        stopped_at = case when ${state} = 'stopped' then now() else stopped_at end
      where id = ${id}`.execute(this.db);
  }

  /** Every worker that ever registered, newest first, with the runs it holds now. */
  async list(): Promise<WorkerView[]> {
    const rows = await sql<WorkerRow & { runs: string; silent_seconds: string }>`
      select w.*,
        (select count(*) from runs r where r.worker_id = w.id and r.status = 'running') as runs,
        extract(epoch from (now() - w.heartbeat_at)) as silent_seconds
      from workers w
      order by w.started_at desc, w.id`.execute(this.db);
    return rows.rows.map(({ silent_seconds, runs, ...row }) => ({
      ...row,
      runs: Number(runs),
      silentSeconds: Number(silent_seconds),
    }));
  }

  /**
   * Takes or renews the merge leadership for `leaseMs`: true when `workerId` leads now. One row at
   * most (a primary key on a constant), so two workers asking at once cannot both win: the insert
   * of one conflicts with the other's, and the update takes over only a lease that ran out.
   *
   * With `forRun`, the leadership is taken only for the candidate at the head of the merge queue:
   * of the runs in it under a live lease, the one that entered first (queue_seq), whichever worker
   * holds it. So landings go in queue order across workers, and a worker with a steady stream of
   * candidates cannot keep the others' waiting.
   */
  async lead(workerId: string, leaseMs: number, forRun?: number): Promise<boolean> {
    const seconds = leaseMs / 1000;
    const won = await sql<{ worker_id: string }>`
      insert into merge_leader as m (singleton, worker_id, lease_expires_at, since)
      select true, ${workerId}, now() + make_interval(secs => ${seconds}), now()
      where ${forRun ?? null}::bigint is null or ${forRun ?? null}::bigint = (
        select id from runs
        where status = 'running' and phase = 'merging' and lease_expires_at >= now()
        order by queue_seq nulls last, id
        limit 1)
      on conflict (singleton) do update set
        worker_id = excluded.worker_id,
        lease_expires_at = excluded.lease_expires_at,
        since = case when m.worker_id = excluded.worker_id then m.since else excluded.since end
      where m.worker_id = excluded.worker_id or m.lease_expires_at < now()
      returning worker_id`.execute(this.db);
    return won.rows[0]?.worker_id === workerId;
  }

  /** Gives up the leadership if `workerId` holds it, so the next worker need not wait the lease out. */
  async resign(workerId: string): Promise<void> {
    await sql`delete from merge_leader where worker_id = ${workerId}`.execute(this.db);
  }

  /** Who leads the merge queue now (undefined when nobody holds a live lease). */
  async leader(): Promise<{ workerId: string; since: Date; leaseExpiresAt: Date } | undefined> {
    const row = (
      await sql<{ worker_id: string; since: Date; lease_expires_at: Date }>`
        select worker_id, since, lease_expires_at from merge_leader
        where lease_expires_at >= now()`.execute(this.db)
    ).rows[0];
    return row
      ? { workerId: row.worker_id, since: row.since, leaseExpiresAt: row.lease_expires_at }
      : undefined;
  }
}
