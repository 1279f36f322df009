import path from "node:path";
import type { FactoryConfig } from "../config/index.ts";
import type { SandboxBackend } from "../sandbox/index.ts";
import { createCommandGate } from "./command.ts";
import { createDependencyGate } from "./dependencies.ts";
import { createDiffPolicyGate, DEFAULT_PROTECTED_PATHS } from "./diff-policy.ts";
import { createHoldoutGate, type HoldoutScenarioSource } from "./holdout.ts";
import { createReviewerGate } from "./reviewer.ts";
import { createSecretScanGate } from "./secret-scan.ts";
import type { Gate } from "./types.ts";

export interface RatchetContext {
  /** Relative holdout folders are resolved against the factory's state dir. */
  stateDir: string;
  /** The reviewer's model when [gates.reviewer] model is empty. */
  agentModel: string;
  sandbox?: SandboxBackend;
  /** Hidden scenarios bound to orders (see line/ledgerScenarios); without, only global ones. */
  holdoutScenarios?: HoldoutScenarioSource;
}

/** The ordered gates [gates] configures; gates listed but not configured are left out. */
export function createRatchet(config: FactoryConfig["gates"], ctx: RatchetContext): Gate[] {
  const timeoutMs = config.timeout_seconds * 1000;
  const sandbox = ctx.sandbox ? { sandbox: ctx.sandbox } : {};
  const command = (name: string, line: string) =>
    line.trim() ? createCommandGate({ name, command: line, timeoutMs, ...sandbox }) : undefined;
  const gates: Gate[] = [];
  for (const name of config.order) {
    let gate: Gate | undefined;
    switch (name) {
      case "diff":
        gate = createDiffPolicyGate({
          maxFiles: config.diff.max_files,
          maxLines: config.diff.max_lines,
          protectedPaths: config.diff.protected ?? DEFAULT_PROTECTED_PATHS,
          allowBinary: config.diff.allow_binary,
        });
        break;
      case "secrets":
        gate = config.secrets.enabled ? createSecretScanGate() : undefined;
        break;
      case "dependencies":
        gate = config.dependencies.enabled
          ? createDependencyGate({ allow: config.dependencies.allow })
          : undefined;
        break;
      case "build":
      case "typecheck":
      case "lint":
      case "test":
        gate = command(name, config[name]);
        break;
      case "holdout":
        gate = config.holdout.command.trim()
          ? createHoldoutGate({
              dir: path.resolve(ctx.stateDir, config.holdout.dir),
              command: config.holdout.command,
              target: config.holdout.target,
              timeoutMs,
              ...sandbox,
              ...(ctx.holdoutScenarios ? { scenarios: ctx.holdoutScenarios } : {}),
            })
          : undefined;
        break;
      case "reviewer":
        gate = config.reviewer.enabled
          ? createReviewerGate({ model: config.reviewer.model || ctx.agentModel })
          : undefined;
        break;
    }
    if (gate) gates.push(gate);
  }
  return gates;
}
