export { BubblewrapBackend, type BubblewrapOptions } from "./bubblewrap.ts";
export { CappedOutput } from "./capped-output.ts";
export { ContainerBackend } from "./container.ts";
export { scrubbedEnv } from "./env.ts";
export { SandboxError, type SandboxErrorCode } from "./errors.ts";
export { NoSandboxBackend, UNSANDBOXED_WARNING } from "./none.ts";
export { type CommandOptions, type CommandResult, runCommand } from "./run-command.ts";
export { createSandboxBackend, type SandboxSettings } from "./select.ts";
export { type SelfTestResult, selfTestSandbox } from "./self-test.ts";
export {
  type SandboxedProgram,
  type SandboxedProgramControl,
  type SandboxedProgramEnding,
  spawnInSandbox,
} from "./spawn-in.ts";
export {
  DEFAULT_LIMITS,
  type ExecOptions,
  type ExecResult,
  type RunSandbox,
  type SandboxBackend,
  type SandboxBackendName,
  type SandboxEvent,
  type SandboxEventSink,
  type SandboxLimits,
  type SandboxLimitsNote,
  type SandboxSpec,
  type SandboxViolation,
  type SandboxViolationKind,
} from "./types.ts";
