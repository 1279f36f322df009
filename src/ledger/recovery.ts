import type { Kysely } from "kysely";
import { isNightshiftError } from "../errors/index.ts";
import { finishRun } from "./runs.ts";
import type { Database, Run, RunPhase } from "./schema.ts";
import { recordTransition } from "./transitions.ts";

/** A run left `running` under a lease nobody renewed. */
export interface ExpiredLease {
  id: number;
  order_id: number;
  worker_id: string;
  phase: RunPhase;
  lease_expires_at: Date;
}

export interface AdoptOptions {
  /** The worker taking the run over, and the lease it gets. */
  workerId: string;
  leaseMs: number;
}

/** Taking back runs whose worker died or stopped renewing its lease: requeued, adopted or parked. */
export class RunRecovery {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Runs of other workers whose lease ran out: what the timekeeper of a live worker looks for on
   * every turn of its loop (one indexed query, see runs_live). A worker's own runs are left to its
   * heartbeat, which stops a run whose lease it lost.
   */
  async expiredLeases(exceptWorker: string, now = new Date()): Promise<ExpiredLease[]> {
    return this.db
      .selectFrom("runs")
      .select(["id", "order_id", "worker_id", "phase", "lease_expires_at"])
      .where("status", "=", "running")
      .where("lease_expires_at", "<", now)
      .where("worker_id", "<>", exceptWorker)
      .orderBy("id")
      .execute();
  }

  /**
   * Takes back runs whose worker died. A run whose rebased commit already reached main is
   * completed as landed (the process died between moving main and recording it). With `adopt`, a
   * run that died in the merge queue with a gate-passed candidate is taken over by the caller (see
   * adoptRun) so that its candidate goes back in the queue, returned in queue order; any other is
   * abandoned and its order queued again, without counting the lost attempt.
   * `all` ignores leases: right for the embedded ledger, whose lock proves no other worker lives.
   * `workerId` takes back that worker's own runs too (it is shutting down); `exceptWorker` leaves
   * that worker's runs alone even when their lease expired (a live worker's timekeeper: its own
   * runs are its heartbeat's business). Several workers may recover at once: each run is taken
   * back by exactly one of them, the others skip it.
   */
  async recoverRuns(options: {
    all: boolean;
    workerId?: string;
    exceptWorker?: string;
    hasLanded: (commit: string) => Promise<boolean>;
    adopt?: AdoptOptions & {
      /** A run adopted this many times already is abandoned instead (it may be what kills us). */
      maxAdoptions: number;
      /** Whether the caller can still put this run's candidate back in the queue. */
      canResume: (run: Run) => Promise<boolean>;
    };
    /**
     * Shutting down: leave runs whose candidate waits in the merge queue running, with their lease
     * expired, so that the next start (of this worker or another) adopts them.
     */
    park?: boolean;
  }): Promise<{ run: Run; outcome: "landed" | "requeued" | "adopted" | "parked" }[]> {
    let query = this.db.selectFrom("runs").selectAll().where("status", "=", "running");
    if (!options.all) {
      query = query.where((eb) =>
        eb.or([
          eb("lease_expires_at", "<", new Date()),
          ...(options.workerId ? [eb("worker_id", "=", options.workerId)] : []),
        ]),
      );
    }
    if (options.exceptWorker) query = query.where("worker_id", "<>", options.exceptWorker);
    const stale = await query.orderBy("queue_seq").orderBy("id").execute();
    const recovered: { run: Run; outcome: "landed" | "requeued" | "adopted" | "parked" }[] = [];
    for (const run of stale) {
      if (run.merge_commit && (await options.hasLanded(run.merge_commit))) {
        const previousMain = run.base_commit ?? run.merge_commit;
        const done = await finishRun(this.db, run.id, {
          outcome: "landed",
          reason: "landed (recorded after restart)",
          previousMain,
          landedCommit: run.merge_commit,
        }).catch((error: unknown) => {
          // Another worker's timekeeper recorded it first.
          if (isNightshiftError(error) && error.code === "run_not_running") return undefined;
          throw error;
        });
        if (done) recovered.push({ run: done.run, outcome: "landed" });
        continue;
      }
      if (options.park && run.phase === "merging" && run.candidate_commit) {
        const parked = await this.parkRun(run);
        if (parked) recovered.push({ run: parked, outcome: "parked" });
        continue;
      }
      const adopt = options.adopt;
      if (
        adopt &&
        run.phase === "merging" &&
        run.candidate_commit &&
        run.adoptions < adopt.maxAdoptions &&
        (await adopt.canResume(run))
      ) {
        const adopted = await this.adoptRun(run, adopt);
        if (adopted) recovered.push({ run: adopted, outcome: "adopted" });
        continue;
      }
      const abandoned = await this.abandonRun(run);
      if (abandoned) recovered.push({ run: abandoned, outcome: "requeued" });
    }
    return recovered;
  }

  /** Expires a queued run's lease now, in one transaction with its transition (see `park`). */
  private async parkRun(run: Run): Promise<Run | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const parked = await tx
        .updateTable("runs")
        .set({ lease_expires_at: new Date(Date.now() - 1) })
        .where("id", "=", run.id)
        .where("status", "=", "running")
        .where("worker_id", "=", run.worker_id)
        .returningAll()
        .executeTakeFirst();
      if (!parked) return undefined;
      await recordTransition(tx, {
        order_id: run.order_id,
        run_id: run.id,
        entity: "run",
        from_status: "running",
        to_status: "running",
        message: "left in the merge queue for the next start",
      });
      return parked;
    });
  }

  /**
   * Takes over a run whose worker died while its candidate was in the merge queue: the run gets
   * a fresh lease under `workerId`, in one transaction, and stays `running` in phase `merging` so
   * that the new worker lands or ejects its candidate. Only succeeds if the run is still exactly
   * as `run` read it (same worker, same lease): of two workers recovering it at once, one wins.
   */
  async adoptRun(run: Run, options: AdoptOptions): Promise<Run | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const adopted = await tx
        .updateTable("runs")
        .set((eb) => ({
          worker_id: options.workerId,
          lease_expires_at: new Date(Date.now() + options.leaseMs),
          adoptions: eb("adoptions", "+", 1),
        }))
        .where("id", "=", run.id)
        .where("status", "=", "running")
        .where("phase", "=", "merging")
        .where("worker_id", "=", run.worker_id)
        .where("lease_expires_at", "=", run.lease_expires_at)
        .returningAll()
        .executeTakeFirst();
      if (!adopted) return undefined;
      await recordTransition(tx, {
        order_id: run.order_id,
        run_id: run.id,
        entity: "run",
        from_status: "running",
        to_status: "running",
        message: `adopted by worker ${options.workerId} after worker ${run.worker_id} stopped; candidate back in the merge queue`,
      });
      return adopted;
    });
  }

  /**
   * Gives up on a run still `running` (e.g. an adopted candidate that could not be put back in the
   * queue): the order is queued again without counting the attempt.
   */
  async abandon(runId: number, reason: string): Promise<Run | undefined> {
    const run = await this.db
      .selectFrom("runs")
      .selectAll()
      .where("id", "=", runId)
      .executeTakeFirst();
    return run?.status === "running" ? this.abandonRun(run, reason) : undefined;
  }

  /** Undefined when the run is no longer running (another worker recovered it first). */
  private async abandonRun(run: Run, why?: string): Promise<Run | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const reason = `${why ?? `worker ${run.worker_id} stopped during ${run.phase}`}; order queued again`;
      const abandoned = await tx
        .updateTable("runs")
        .set({ status: "abandoned", phase: "done", outcome_reason: reason, ended_at: new Date() })
        .where("id", "=", run.id)
        .where("status", "=", "running")
        .returningAll()
        .executeTakeFirst();
      if (!abandoned) return undefined;
      await tx
        .updateTable("work_orders")
        .set((eb) => ({
          status: "queued",
          attempts: eb("attempts", "-", 1),
          updated_at: new Date(),
        }))
        .where("id", "=", run.order_id)
        .where("status", "=", "running")
        .execute();
      await recordTransition(tx, {
        order_id: run.order_id,
        run_id: run.id,
        entity: "run",
        from_status: "running",
        to_status: "abandoned",
        message: reason,
      });
      await recordTransition(tx, {
        order_id: run.order_id,
        entity: "order",
        from_status: "running",
        to_status: "queued",
        message: reason,
      });
      return abandoned;
    });
  }
}
