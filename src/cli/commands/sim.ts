import { demoPolicy, startSimulator } from "../../sim/index.ts";

export async function simCommand(
  options: { host: string; port: number; seed: number; brokenRate: number; giveUpRate: number },
  print: (line: string) => void,
): Promise<void> {
  const simulator = await startSimulator({
    host: options.host,
    port: options.port,
    policy: demoPolicy({
      seed: options.seed,
      brokenPatchRate: options.brokenRate,
      giveUpRate: options.giveUpRate,
    }),
  });
  print(`model simulator (SIMULATED models, demo policy) listening at ${simulator.url}`);
  print("OpenAI Chat Completions: POST /v1/chat/completions · GET /v1/models · Ctrl-C to stop");
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await simulator.close();
}
