export { CappedOutput } from "./capped-output.ts";
export { scrubbedEnv } from "./env.ts";
export { SandboxError, type SandboxErrorCode } from "./errors.ts";
export { type CommandOptions, type CommandResult, runCommand } from "./run-command.ts";
