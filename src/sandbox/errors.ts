import { NightshiftError } from "../errors/index.ts";

/**
 * A sandbox error means the command never ran (or the sandbox could not be set up). A command
 * that fails, times out, is aborted or hits a limit is not an error: that is in its CommandResult.
 */
export type SandboxErrorCode =
  | "command_could_not_start"
  /** The configured backend's program (bwrap, podman/docker) is not installed. */
  | "backend_missing"
  /** The program is there but cannot create a sandbox on this host (e.g. namespaces disabled). */
  | "backend_unavailable"
  /** The startup self-test found a wall that does not hold. */
  | "self_test_failed"
  /** The sandbox was asked for something it must not do (a cwd outside the workspace, ...). */
  | "invalid_sandbox_spec";

export class SandboxError extends NightshiftError {
  declare readonly code: SandboxErrorCode;
  declare readonly hint: string;
  /** What went wrong, without the hint (the message, kept under this name for callers). */
  readonly detail: string;

  constructor(code: SandboxErrorCode, detail: string, hint: string, options?: ErrorOptions) {
    super(code, detail, { hint, cause: options?.cause });
    this.name = "SandboxError";
    this.detail = detail;
  }
}
