/**
 * A sandbox error means the command never ran. A command that fails, times out or is aborted is
 * not an error: runCommand reports that in its CommandResult.
 */
export type SandboxErrorCode = "command_could_not_start";

export class SandboxError extends Error {
  readonly code: SandboxErrorCode;
  /** What went wrong, without the hint (callers that add their own context use this). */
  readonly detail: string;
  readonly hint: string;

  constructor(code: SandboxErrorCode, detail: string, hint: string, options?: ErrorOptions) {
    super(`${detail}\nhow to fix: ${hint}`, options);
    this.name = "SandboxError";
    this.code = code;
    this.detail = detail;
    this.hint = hint;
  }
}
