import { InvalidArgumentError } from "commander";
import {
  demoPolicy,
  FAULT_KINDS,
  type FaultKind,
  loadScenario,
  scenarioPolicy,
  startSimulator,
} from "../../sim/index.ts";

export interface SimOptions {
  host: string;
  port: number;
  seed: number;
  brokenRate: number;
  giveUpRate: number;
  scenario?: string;
  firstTokenMs?: number;
  tokensPerSecond?: number;
  fault: Partial<Record<FaultKind, number>>;
}

/** `--fault rate_limit=0.05`, repeatable, into a map of fault rates. */
export function collectFault(value: string, previous: Partial<Record<FaultKind, number>>) {
  const [kind, rate] = value.split("=");
  if (!kind || !(FAULT_KINDS as readonly string[]).includes(kind)) {
    throw new InvalidArgumentError(
      `unknown fault "${kind}"; one of ${FAULT_KINDS.join(", ")} (e.g. rate_limit=0.05).`,
    );
  }
  const n = Number(rate);
  if (rate === undefined || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError(`"${value}" needs a rate from 0 to 1, e.g. ${kind}=0.05.`);
  }
  return { ...previous, [kind]: n };
}

export async function simCommand(
  options: SimOptions,
  print: (line: string) => void,
): Promise<void> {
  const policy = options.scenario
    ? scenarioPolicy(await loadScenario(options.scenario))
    : demoPolicy({
        seed: options.seed,
        brokenPatchRate: options.brokenRate,
        giveUpRate: options.giveUpRate,
      });
  const simulator = await startSimulator({
    host: options.host,
    port: options.port,
    policy,
    latency: {
      ...(options.firstTokenMs !== undefined ? { firstTokenMs: options.firstTokenMs } : {}),
      ...(options.tokensPerSecond !== undefined
        ? { tokensPerSecond: options.tokensPerSecond }
        : {}),
    },
    faults: { seed: options.seed, rates: options.fault },
  });
  const what = options.scenario ? `scenario ${options.scenario}` : "demo policy";
  print(`model simulator (SIMULATED models, ${what}) listening at ${simulator.rootUrl}`);
  print(
    "POST /v1/chat/completions · POST /v1/messages · POST /v1/messages/count_tokens · POST /v1/responses · GET /v1/models",
  );
  print("Ctrl-C to stop");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await simulator.close();
}
