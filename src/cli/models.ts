import { access } from "node:fs/promises";
import path from "node:path";
import { type FactoryConfig, type ProviderSettings, resolveProviders } from "../config/index.ts";
import { NightshiftError } from "../errors/index.ts";
import type { ConfiguredProvider, Upstream } from "../gateway/index.ts";
import { demoPolicy, type RunningSimulator, standInPolicy, startSimulator } from "../sim/index.ts";

/** The marker `nightshift demo` leaves in its repository's state folder (never committed). */
export const DEMO_MARKER = "demo-repository";

export interface StartedProviders {
  providers: ConfiguredProvider[];
  /** A provider is the bundled simulator: everything it answers is simulated. */
  simulated: boolean;
  close(): Promise<void>;
}

/**
 * The configured providers, ready for the gateway: keys read from the environment (only the
 * gateway holds them), and the simulator started if one is configured.
 */
export async function startProviders(
  factory: { config: FactoryConfig; stateDir: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<StartedProviders> {
  const settings = resolveProviders(factory.config);
  let simulator: RunningSimulator | undefined;
  const providers: ConfiguredProvider[] = [];
  try {
    for (const provider of settings) {
      if (provider.kind === "simulator") {
        simulator ??= await startConfiguredSimulator(factory);
        providers.push({ ...provider, upstream: simulatorUpstream(provider, simulator) });
      } else {
        providers.push({ ...provider, upstream: providerUpstream(provider, env) });
      }
    }
  } catch (error) {
    await simulator?.close();
    throw error;
  }
  return {
    providers,
    simulated: simulator !== undefined,
    close: async () => simulator?.close(),
  };
}

/** The key a provider needs, or a clear error naming the variable and the fix. */
export function providerKey(provider: ProviderSettings, env: NodeJS.ProcessEnv): string {
  if (provider.auth === "none" || !provider.apiKeyEnv) return "";
  const key = env[provider.apiKeyEnv];
  if (!key) {
    throw new NightshiftError(
      "model_key_missing",
      `provider "${provider.name}" needs its API key in the environment variable ${provider.apiKeyEnv}, which is not set`,
      {
        hint: `export ${provider.apiKeyEnv}=<your ${provider.kind} key> before starting nightshift, or set [providers.${provider.name}] api_key_env to the variable that holds it`,
      },
    );
  }
  return key;
}

/** A real provider's upstream: its base URL as its SDK takes it, and its key from the environment. */
export function providerUpstream(provider: ProviderSettings, env: NodeJS.ProcessEnv): Upstream {
  const base = (provider.baseURL ?? "").replace(/\/+$/, "");
  return {
    name: provider.name,
    // Anthropic's and Google's SDKs take the host; the protocol paths carry the version.
    baseURL:
      provider.kind === "anthropic"
        ? base.replace(/\/v1$/, "")
        : provider.kind === "google"
          ? base.replace(/\/v1beta$/, "")
          : base,
    apiKey: providerKey(provider, env),
    auth: provider.auth,
    query: provider.query,
    versionedBase: provider.kind === "openai" || provider.kind === "openai-compatible",
  };
}

function simulatorUpstream(provider: ProviderSettings, simulator: RunningSimulator): Upstream {
  return {
    name: provider.name,
    baseURL: simulator.rootUrl,
    apiKey: "simulated",
    auth: "bearer",
    query: {},
  };
}

async function startConfiguredSimulator(factory: {
  config: FactoryConfig;
  stateDir: string;
}): Promise<RunningSimulator> {
  const sim = factory.config.simulator;
  if (sim.policy === "demo" && !(await isDemoRepository(factory.stateDir))) {
    throw new NightshiftError(
      "simulator_demo_elsewhere",
      `[simulator] policy = "demo" plays the demo's scripted patches, and this is not the repository \`nightshift demo\` made`,
      {
        hint: 'set [simulator] policy = "stand-in" (a labelled stand-in that changes nothing), or configure a real provider (docs/models.md)',
      },
    );
  }
  return startSimulator({
    policy:
      sim.policy === "demo"
        ? demoPolicy({
            seed: sim.seed,
            brokenPatchRate: sim.broken_patch_rate,
            giveUpRate: sim.give_up_rate,
            fixOnFeedbackRate: sim.fix_on_feedback_rate,
          })
        : standInPolicy(),
    latency: { firstTokenMs: sim.first_token_ms },
  });
}

export async function isDemoRepository(stateDir: string): Promise<boolean> {
  return access(path.join(stateDir, DEMO_MARKER)).then(
    () => true,
    () => false,
  );
}
