import {
  demoPolicy,
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
    "POST /v1/chat/completions · POST /v1/messages · POST /v1/messages/count_tokens · POST /v1/responses · POST /v1beta/models/{model}:generateContent · GET /v1/models",
  );
  print("Ctrl-C to stop");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await simulator.close();
}
