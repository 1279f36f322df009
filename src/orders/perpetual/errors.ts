import { NightshiftError } from "../../errors/index.ts";

export type PerpetualSourceErrorCode =
  /** The command did not start at all (no bash, the sandbox refused, no checkout). */
  | "source_command_could_not_start"
  | "source_command_timed_out"
  /** It ran, but failed without output the source can read (command not found, bad config). */
  | "source_command_failed"
  | "source_output_unreadable"
  | "coverage_report_missing"
  | "coverage_report_unreadable";

/**
 * A perpetual source that could not look for work: the round goes on with the other sources, and
 * the finder records it as a defect (once while it stays open) so that a person sees it.
 */
export class PerpetualSourceError extends NightshiftError {
  declare readonly code: PerpetualSourceErrorCode;

  constructor(
    code: PerpetualSourceErrorCode,
    message: string,
    hint: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, { hint, ...options });
    this.name = "PerpetualSourceError";
  }
}
