import { realpath } from "node:fs/promises";
import { runCommand } from "./run-command.ts";
import type { ExecOptions, ExecResult, RunSandbox, SandboxBackend, SandboxSpec } from "./types.ts";
import { OutputScanner, onePerKind } from "./violations.ts";

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
        // Nothing is blocked here, but what the output shows is still worth recording: every
        // line, as it streams (a long-lived program prints more than the capture keeps).
        const named = options.label ?? options.command;
        const outScanner = new OutputScanner(named);
        const errScanner = new OutputScanner(named);
        const { onOutput, onStderr } = options;
        const result = await runCommand({
          ...options,
          cwd: options.cwd ?? workspacePath,
          env: { ...gatewayEnv, ...options.env },
          onOutput: (chunk) => {
            outScanner.write(chunk);
            onOutput?.(chunk);
          },
          ...(onStderr
            ? {
                onStderr: (chunk: Buffer) => {
                  errScanner.write(chunk);
                  onStderr(chunk);
                },
              }
            : {}),
        });
        const violations = onePerKind([...outScanner.end(), ...errScanner.end()]);
        for (const violation of violations) spec.onEvent?.({ kind: "violation", violation });
        return { ...result, violations };
      },
      async dispose() {},
    };
  }
}
