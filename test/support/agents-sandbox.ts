import { existsSync } from "node:fs";
import { expect } from "vitest";
import type { AgentDriver, AgentEvent } from "../../src/agents/index.ts";
import {
  BubblewrapBackend,
  type RunSandbox,
  type SandboxBackend,
  type SandboxLimits,
} from "../../src/sandbox/index.ts";

/**
 * A driver whose every run is given a sandbox over its workspace, opened on the run's own gateway
 * endpoint, as the line does (src/line/line.ts openSandbox): the driver then starts its CLI inside
 * it. The sandbox's blocked attempts become `sandbox_violation` events in the run's stream, as
 * the line's SandboxWatch records them.
 */
export function inSandbox(
  driver: AgentDriver,
  backend: SandboxBackend = new BubblewrapBackend(),
  limits: Partial<SandboxLimits> = {},
): AgentDriver & { opened: RunSandbox[] } {
  const opened: RunSandbox[] = [];
  return {
    name: driver.name,
    opened,
    ...(driver.preflight ? { preflight: () => driver.preflight?.() ?? Promise.resolve() } : {}),
    async run(task, emit, signal) {
      const sandbox = await backend.create({
        workspacePath: task.workspacePath,
        gateway: { url: task.endpoint.baseURL, apiKey: task.endpoint.apiKey },
        limits,
        onEvent: (event) => {
          if (event.kind === "violation") {
            const { kind, detail, command } = event.violation;
            emit({
              kind: "sandbox_violation",
              violation: kind,
              detail,
              ...(command ? { command } : {}),
            });
          } else if (event.kind === "unsandboxed") {
            emit({ kind: "sandbox_warning", message: event.message });
          }
        },
      });
      opened.push(sandbox);
      try {
        return await driver.run({ ...task, sandbox }, emit, signal);
      } finally {
        await sandbox.dispose();
      }
    },
  };
}

export function violationsOf(events: AgentEvent[]) {
  return events.filter(
    (e): e is Extract<AgentEvent, { kind: "sandbox_violation" }> => e.kind === "sandbox_violation",
  );
}

/**
 * The agent's shell write next to its workspace: inside the sandbox it failed, left no file, and
 * is the run's only recorded violation; outside the sandbox nothing was recorded at all.
 */
export function expectOutsideWriteBlocked(
  events: AgentEvent[],
  sandboxed: boolean,
  attempt: { output: string | undefined; outside: string | undefined; agent: string },
): void {
  if (!sandboxed) {
    expect(violationsOf(events)).toEqual([]);
    return;
  }
  expect(attempt.output).toMatch(/outside\.txt: (Permission denied|Read-only file system)/);
  expect(existsSync(attempt.outside!)).toBe(false);
  expect(violationsOf(events)).toEqual([
    {
      kind: "sandbox_violation",
      violation: expect.stringMatching(/^(access_denied|write_denied)$/),
      detail: expect.stringContaining("outside.txt"),
      command: attempt.agent,
    },
  ]);
}
