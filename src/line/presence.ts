import os from "node:os";
import type { Logger } from "pino";
import type { Ledger } from "../ledger/index.ts";

/**
 * This worker's row in the ledger's roster (see WorkerRoster): registered when the line starts,
 * its heartbeat renewed on every turn of the line's loop, 'draining' once it stops claiming and
 * 'stopped' when it leaves, so `nightshift status` shows who works where and who went silent. A
 * failure is logged and does not stop the line: the roster is for people, the leases are what
 * keep the runs safe.
 */
export class Presence {
  constructor(
    private readonly parts: {
      ledger: Ledger;
      workerId: string;
      concurrency: number;
      logger: Logger;
    },
  ) {}

  async register(): Promise<void> {
    const { ledger, workerId, concurrency } = this.parts;
    await this.quietly("register", () =>
      ledger.workers.register({ id: workerId, host: os.hostname(), pid: process.pid, concurrency }),
    );
  }

  async beat(): Promise<void> {
    await this.quietly("beat", () => this.parts.ledger.workers.beat(this.parts.workerId));
  }

  async draining(): Promise<void> {
    await this.quietly("draining", () =>
      this.parts.ledger.workers.setState(this.parts.workerId, "draining"),
    );
  }

  async stopped(): Promise<void> {
    await this.quietly("stopped", () =>
      this.parts.ledger.workers.setState(this.parts.workerId, "stopped"),
    );
  }

  private async quietly(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      this.parts.logger.warn({ err: error, what }, "could not update this worker's roster row");
    }
  }
}
