import type { LineView } from "../../console/schema.ts";
import { NightshiftError } from "../../errors/index.ts";
import { ledgerLocationFor } from "../../ledger/location.ts";
import { locateFactory, openFactory } from "../factory.ts";
import { CONSOLE_PORT } from "./console.ts";

const POLL_MS = 1000;

/**
 * `nightshift watch`: the line, live, in a terminal. On a PostgreSQL ledger it reads the ledger
 * itself; an embedded ledger belongs to one process (`nightshift run` or `nightshift console`),
 * so it reads that process's console stream instead (`--url`, default the console's default
 * address): holding the ledger itself would keep the line from starting. On a terminal it redraws
 * the screen; piped (or with --plain) it prints one line per change.
 */
export async function watchCommand(
  root: string,
  options: { url?: string; plain?: boolean },
  write: (text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const { screen, snapshotLine } = await import("../../console/watch-view.ts");
  const tty = !options.plain && process.stdout.isTTY === true;
  let last = "";
  const show = (view: LineView) => {
    const text = tty ? screen(view, process.stdout.columns ?? 100) : snapshotLine(view);
    const key = tty ? text.replace(/^.*\n/, "") : text.replace(/^\S+ /, "");
    if (key === last) return;
    last = key;
    write(tty ? `\x1b[2J\x1b[H${text}\n` : `${text}\n`);
  };
  const { stateDir } = await locateFactory(root);
  if (options.url === undefined && ledgerLocationFor(stateDir).kind === "postgres") {
    await fromLedger(root, show, signal);
    return;
  }
  await fromConsole(options.url ?? `http://127.0.0.1:${CONSOLE_PORT}/`, show, signal);
}

/** Polls a shared (PostgreSQL) ledger directly. */
async function fromLedger(
  root: string,
  show: (view: LineView) => void,
  signal: AbortSignal,
): Promise<void> {
  const factory = await openFactory(root, "nightshift watch");
  try {
    const { lineView } = await import("../../console/index.ts");
    while (!signal.aborted) {
      show(await lineView(factory.ledger, factory.config.factory.name));
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
    }
  } finally {
    await factory.close();
  }
}

async function fromConsole(
  url: string,
  show: (view: LineView) => void,
  signal: AbortSignal,
): Promise<void> {
  const { decodeSSE } = await import("../../protocols/sse.ts");
  const token = process.env.NIGHTSHIFT_CONSOLE_TOKEN;
  let response: Response;
  try {
    response = await fetch(new URL("/api/stream", url), {
      signal,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  } catch (error) {
    if (signal.aborted) return;
    throw new NightshiftError(
      "console_unreachable",
      `no console answers at ${url}: the embedded ledger is read through the process that holds it`,
      {
        hint: "start `nightshift run` or `nightshift console`, or give the console's address with --url (nightshift run prints it)",
        cause: error,
      },
    );
  }
  if (!response.ok || !response.body) {
    throw new NightshiftError(
      "console_refused",
      `the console at ${url} answered ${response.status}`,
      { hint: "set NIGHTSHIFT_CONSOLE_TOKEN to the console's access token" },
    );
  }
  try {
    for await (const event of decodeSSE(response.body)) {
      if (event.event === "line") show(JSON.parse(event.data) as LineView);
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  }
}
