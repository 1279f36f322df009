import type { RunningConsole } from "../../console/index.ts";
import { NightshiftError } from "../../errors/index.ts";
import { budgetSettingsOf, type Factory, openFactory } from "../factory.ts";

/** The console's default port; `nightshift run` takes any free one when another process has it. */
export const CONSOLE_PORT = 4646;

export interface ConsoleFlags {
  host?: string;
  port?: number;
  token?: string;
}

/** The access token: the flag, else NIGHTSHIFT_CONSOLE_TOKEN, else none (loopback only). */
function tokenOf(flags: ConsoleFlags): string | undefined {
  const token = flags.token ?? process.env.NIGHTSHIFT_CONSOLE_TOKEN;
  return token === undefined || token === "" ? undefined : token;
}

/** Serves the factory's console beside whatever else this process does with its ledger. */
export async function serveConsole(
  factory: Factory,
  flags: ConsoleFlags,
  options: { fallBackToFreePort: boolean },
): Promise<RunningConsole> {
  const { startConsole } = await import("../../console/index.ts");
  const settings = {
    ledger: factory.ledger,
    repo: factory.root,
    stateDir: factory.stateDir,
    factory: factory.config.factory.name,
    budget: budgetSettingsOf(factory.config.budget),
    logger: factory.logger.child({ component: "console" }),
    host: flags.host ?? "127.0.0.1",
    port: flags.port ?? CONSOLE_PORT,
    token: tokenOf(flags),
  };
  try {
    return await startConsole(settings);
  } catch (error) {
    const taken = error instanceof NightshiftError && error.code === "console_port_taken";
    if (!taken || !options.fallBackToFreePort || flags.port !== undefined) throw error;
    return startConsole({ ...settings, port: 0 });
  }
}

/** `nightshift console`: the supervisor's web console on its own, until interrupted. */
export async function consoleCommand(
  root: string,
  flags: ConsoleFlags,
  print: (line: string) => void,
): Promise<void> {
  const factory = await openFactory(root, "nightshift console");
  try {
    const running = await serveConsole(factory, flags, { fallBackToFreePort: false });
    print(`console: ${running.url}`);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await running.close();
  } finally {
    await factory.close();
  }
}
