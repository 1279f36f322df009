export interface GateContext {
  workspacePath: string;
  commit: string;
  signal?: AbortSignal;
  /** Extra environment for the gate's processes, on top of sandbox's scrubbedEnv base. */
  env?: Record<string, string>;
}

export interface GateOutcome {
  gate: string;
  passed: boolean;
  exitCode: number | null;
  output: string;
  durationMs: number;
  timedOut: boolean;
}

/** One check a candidate must pass; the ratchet runs gates in order. */
export interface Gate {
  readonly name: string;
  run(ctx: GateContext): Promise<GateOutcome>;
}
