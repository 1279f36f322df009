import { realpath } from "node:fs/promises";
import { runCommand } from "./run-command.ts";
import type { ExecOptions, ExecResult, RunSandbox, SandboxBackend, SandboxSpec } from "./types.ts";
import { onePerKind, violationsInOutput } from "./violations.ts";

export const UNSANDBOXED_WARNING =
  'WARNING: this run is NOT sandboxed ([sandbox] backend = "none"): its commands can read host secrets, write anywhere this user can, and reach the network';

/**
 * No isolation: commands run as the host user with only a scrubbed environment. Explicit opt-in
 * only (config validation demands allow_unsandboxed = true), and every run says so as an event.
 */
export class NoSandboxBackend implements SandboxBackend {
  readonly name = "none" as const;

  async create(spec: SandboxSpec): Promise<RunSandbox> {
    const workspacePath = await realpath(spec.workspacePath);
    spec.onEvent?.({ kind: "unsandboxed", message: UNSANDBOXED_WARNING });
    const gatewayEnv: Record<string, string> = spec.gateway
      ? { NIGHTSHIFT_GATEWAY_URL: spec.gateway.url, NIGHTSHIFT_API_KEY: spec.gateway.apiKey }
      : {};
    return {
      backend: "none",
      workspacePath,
      gatewayEnv,
      kernelProcessLimit: false,
      async exec(options: ExecOptions): Promise<ExecResult> {
        const result = await runCommand({
          ...options,
          cwd: options.cwd ?? workspacePath,
          env: { ...gatewayEnv, ...options.env },
        });
        // Nothing is blocked here, but what the output shows is still worth recording.
        const violations = onePerKind(violationsInOutput(result.output, options.command));
        for (const violation of violations) spec.onEvent?.({ kind: "violation", violation });
        return { ...result, violations };
      },
      async dispose() {},
    };
  }
}
