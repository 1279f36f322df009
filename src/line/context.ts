import type { MergeQueue } from "../merge/index.ts";
import type { LineParts, LineSettings } from "./parts.ts";
import type { ProgressReporter } from "./progress.ts";

/**
 * Why the line stopped taking work before its queue was empty: a factory-wide budget ran out, a
 * model request failed in a way every later run would too, or main itself fails the gates. The
 * first reason sticks: it is the one a person must fix.
 */
export class HaltSwitch {
  private why: string | undefined;

  get reason(): string | undefined {
    return this.why;
  }

  /** Halts the line; true when this call halted it (false when it already was). */
  pull(reason: string): boolean {
    if (this.why !== undefined) return false;
    this.why = reason;
    return true;
  }
}

/** What every role of the line shares. */
export interface LineContext {
  parts: LineParts;
  settings: LineSettings;
  /** This line's runs in flight, by run id; each promise settles once its run has ended. */
  active: Map<number, Promise<void>>;
  /** Lands green candidates (the parts' queue, or the serial queue). */
  queue: MergeQueue;
  progress: ProgressReporter;
  halt: HaltSwitch;
}
