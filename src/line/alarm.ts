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

  async wait(ms: number, alsoOn: Promise<unknown>[] = []): Promise<void> {
    if (this.rung) {
      this.rung = false;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const rungOrTimedOut = new Promise<void>((resolve) => {
      this.wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    try {
      await Promise.race([rungOrTimedOut, ...alsoOn]);
    } finally {
      clearTimeout(timer);
      this.wake = undefined;
      this.rung = false;
    }
  }
}
