import { openFactory } from "../factory.ts";
import { snapshotter, workLine } from "./run.ts";

/**
 * `nightshift worker`: a line that never runs out of work, taking its orders from the shared
 * ledger, on any host. SIGTERM (or SIGINT) drains it: it stops claiming, lets its runs finish for
 * `[scale] drain_seconds`, then stops the rest, whose orders go back to the queue without losing
 * an attempt (a candidate waiting in the merge queue is left for the next worker to land), and
 * exits 0. A second signal skips the wait.
 */
export async function workerCommand(
  root: string,
  options: { concurrency?: number; drainSeconds?: number },
  print: (line: string) => void,
): Promise<number> {
  const factory = await openFactory(root, "nightshift worker");
  if (options.concurrency !== undefined) factory.config.line.concurrency = options.concurrency;
  const graceMs = (options.drainSeconds ?? factory.config.scale.drain_seconds) * 1000;
  const drain = new AbortController();
  const stop = new AbortController();
  let grace: NodeJS.Timeout | undefined;
  const onSignal = (name: string) => {
    if (drain.signal.aborted) {
      print(`${name} again: stopping now; runs in flight go back to the queue`);
      stop.abort();
      return;
    }
    print(
      `${name}: draining: no new claims; runs in flight have ${graceMs / 1000}s to finish, then go back to the queue`,
    );
    drain.abort();
    grace = setTimeout(() => stop.abort(), graceMs);
  };
  const onTerm = () => onSignal("SIGTERM");
  const onInt = () => onSignal("SIGINT");
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  const snapshots = snapshotter(factory);
  try {
    // A worker serves no console: one `nightshift console` serves the whole shared ledger.
    const line = await workLine(
      factory,
      { forever: true, signal: stop.signal, drain: drain.signal, console: false },
      { print, snapshots },
      (started) =>
        print(
          `worker ${started.workerId} taking orders (concurrency ${factory.config.line.concurrency})`,
        ),
    );
    if (line.haltedBecause) {
      print(`stopped taking work: ${line.haltedBecause}`);
      return 1;
    }
    print("worker stopped");
    return 0;
  } finally {
    clearTimeout(grace);
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onInt);
    await snapshots.settled();
    await factory.close();
  }
}
