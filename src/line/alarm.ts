/**
 * The line's idle wait: it ends when rung (a ledger wake-up, see Ledger.onWork), when one of the
 * given promises settles (a run ended, the line stops), or after the poll interval, whichever comes
 * first. Polling stays as the floor: the inbox, an embedded ledger's other changes and expired
 * leases have no notification. A ring while nobody waits is kept for the next wait, so a wake-up
 * that arrives while the line is busy claiming is not lost.
 */
export class Alarm {
  private rung = false;
  private wake: (() => void) | undefined;

  readonly ring = (): void => {
    this.rung = true;
    this.wake?.();
  };

  /** Says what ended the wait: a ring, the poll interval, or one of `alsoOn`. */
  async wait(ms: number, alsoOn: Promise<unknown>[] = []): Promise<"rung" | "timeout" | "settled"> {
    if (this.rung) {
      this.rung = false;
      return "rung";
    }
    let timer: NodeJS.Timeout | undefined;
    const rungOrTimedOut = new Promise<"rung" | "timeout">((resolve) => {
      this.wake = () => resolve("rung");
      timer = setTimeout(() => resolve("timeout"), ms);
    });
    try {
      return await Promise.race([
        rungOrTimedOut,
        ...alsoOn.map((p) => p.then(() => "settled" as const)),
      ]);
    } finally {
      clearTimeout(timer);
      this.wake = undefined;
      this.rung = false;
    }
  }
}
