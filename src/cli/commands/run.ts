import { buildLine, openFactory } from "../factory.ts";
import { formatProgress, formatTotals } from "../output.ts";

export async function runCommand(
  root: string,
  options: { forever?: boolean; concurrency?: number },
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
  try {
    const { line, close } = await buildLine(factory);
    try {
      line.onProgress((p) => print(formatProgress(p)));
      await line.run({ forever: options.forever ?? false, signal: stop.signal });
    } finally {
      await close();
    }
    const totals = await factory.ledger.totals();
    for (const text of formatTotals(totals, factory.config.agent.model, Date.now() - started))
      print(text);
    return totals.orders.failed > 0 ? 1 : 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await factory.close();
  }
}
