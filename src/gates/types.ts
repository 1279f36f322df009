/** An OpenAI-compatible endpoint and the scoped key to use there (the gateway hands these out). */
export interface GateModelEndpoint {
  baseURL: string;
  apiKey: string;
}

/** What a gate is told about the work order a change is for. */
export interface GateOrder {
  id: number;
  title: string;
  spec: string;
  acceptance: string;
}

export interface GateContext {
  workspacePath: string;
  commit: string;
  signal?: AbortSignal;
  /** Extra environment for the gate's processes, on top of sandbox's scrubbedEnv base. */
  env?: Record<string, string>;
  /**
   * The commit the change is measured from (the main tip the candidate was made on). Gates that
   * judge the change rather than the tree need it; without it they cannot give a verdict.
   */
  base?: string;
  /** The work order the change is for (the reviewer judges the diff against it). */
  order?: GateOrder;
  /** Opens a model endpoint through the gateway, metered to the run; only asked for when needed. */
  model?: () => Promise<GateModelEndpoint>;
}

export interface GateOutcome {
  gate: string;
  passed: boolean;
  exitCode: number | null;
  output: string;
  durationMs: number;
  timedOut: boolean;
  /**
   * Feedback the gate wrote for the agent itself, used as is instead of an excerpt of `output`
   * (the holdout gate's, which must never carry a hidden scenario's source).
   */
  feedback?: string;
}

/**
 * What a gate judges. "tree" gates (build, tests, holdout) judge the code as it stands, so they
 * run again on exactly the stack the merge queue lands. "change" gates (diff policy, secrets,
 * dependencies, reviewer) judge what the agent wrote; rebasing re-applies that same change (a
 * conflict sends the order back instead), so their verdict on the candidate carries over.
 */
export type GateScope = "tree" | "change";

/** One check a candidate must pass; the ratchet runs gates in order. */
export interface Gate {
  readonly name: string;
  /** Default "tree". */
  readonly scope?: GateScope;
  run(ctx: GateContext): Promise<GateOutcome>;
}
