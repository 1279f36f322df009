import { usesSimulator } from "../../config/index.ts";
import type { Line } from "../../line/index.ts";
import { buildLine, type Factory, housekeeper, openFactory } from "../factory.ts";
import { formatProgress, formatTotals } from "../output.ts";
import { checkFactory, preflightError } from "../preflight.ts";
import { type ConsoleFlags, serveConsole } from "./console.ts";
import { writeSnapshot } from "./status.ts";

const SNAPSHOT_EVERY_MS = 500;

export function simulatedBanner(policy: "demo" | "stand-in"): string[] {
  return [
    "=".repeat(78),
    "SIMULATED MODEL: a configured provider is nightshift's bundled model simulator, not a real",
    "model. Its answers, token counts and costs are simulated.",
    policy === "demo"
      ? "It plays the scripted patches of the demo repository (and refuses to run elsewhere)."
      : "It is a labelled stand-in that changes nothing: configure a real provider to get work done.",
    "See docs/models.md.",
    "=".repeat(78),
  ];
}

export async function runCommand(
  root: string,
  options: { forever?: boolean; concurrency?: number; console?: false | ConsoleFlags },
  print: (line: string) => void,
): Promise<number> {
  const factory = await openFactory(root, "nightshift run");
  if (options.concurrency !== undefined) {
    factory.config.line.concurrency = options.concurrency;
  }
  const started = Date.now();
  const stop = new AbortController();
  const onSignal = () => {
    print("stopping: runs in flight are cancelled and their orders queued again");
    stop.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const snapshots = snapshotter(factory);
  try {
    const line = await workLine(
      factory,
      {
        forever: options.forever ?? false,
        signal: stop.signal,
        console: options.console ?? {},
      },
      { print, snapshots },
    );
    if (line.haltedBecause) print(`stopped taking work: ${line.haltedBecause}`);
    const paused = await line.pausedBecause();
    if (paused) print(`the line is paused (\`nightshift resume\` resumes it): ${paused}`);
    await snapshots.now();
    const totals = await factory.ledger.totals();
    for (const text of formatTotals(totals, factory.config.agent.model, Date.now() - started))
      print(text);
    return totals.orders.failed > 0 || line.haltedBecause || paused ? 1 : 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await snapshots.settled();
    await factory.close();
  }
}

/**
 * Checks the factory, then builds its line and works it (serving the console unless told not to,
 * and keeping transcripts and logs within their caps) until the queue is empty or, `forever`,
 * until `signal` aborts; `drain` stops the claiming first (see Line.run). Returns the line, to
 * say why it stopped.
 */
export async function workLine(
  factory: Factory,
  options: {
    forever: boolean;
    signal: AbortSignal;
    drain?: AbortSignal;
    console: false | ConsoleFlags;
  },
  out: { print: (line: string) => void; snapshots: ReturnType<typeof snapshotter> },
  onStart?: (line: Line) => void,
): Promise<Line> {
  const { print, snapshots } = out;
  const refusal = preflightError(await checkFactory(factory));
  if (refusal) throw refusal;
  if (usesSimulator(factory.config)) {
    for (const text of simulatedBanner(factory.config.simulator.policy)) print(text);
  }
  // Before the line is built: a console that cannot start (a token missing off loopback)
  // leaves nothing running behind it.
  const consoleServer =
    options.console === false
      ? undefined
      : await serveConsole(factory, options.console, { fallBackToFreePort: true });
  if (consoleServer) print(`console: ${consoleServer.url}`);
  let built: Awaited<ReturnType<typeof buildLine>>;
  try {
    built = await buildLine(factory, { forever: options.forever });
  } catch (error) {
    await consoleServer?.close();
    throw error;
  }
  const { line, close } = built;
  const keeper = await housekeeper(factory);
  keeper.start();
  try {
    line.onProgress((p) => {
      print(formatProgress(p));
      snapshots.soon();
    });
    snapshots.soon();
    onStart?.(line);
    await line.run({
      forever: options.forever,
      signal: options.signal,
      ...(options.drain ? { drain: options.drain } : {}),
    });
  } finally {
    await keeper.stop();
    await consoleServer?.close();
    await close();
  }
  return line;
}

/** Keeps `status` useful while this process holds the ledger: a snapshot at most twice a second. */
export function snapshotter(factory: Factory) {
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  const now = () => {
    writing = writing
      .then(() => writeSnapshot(factory.stateDir, factory.ledger))
      .catch((error: unknown) =>
        factory.logger.warn({ err: error }, "could not write the status snapshot"),
      );
    return writing;
  };
  return {
    soon() {
      timer ??= setTimeout(() => {
        timer = undefined;
        void now();
      }, SNAPSHOT_EVERY_MS);
    },
    now,
    async settled() {
      clearTimeout(timer);
      await writing;
    },
  };
}
