import type { Policy } from "./policy.ts";

export const STAND_IN_REPLY =
  "SIMULATED MODEL: this is nightshift's model simulator standing in for a real model. It does not " +
  "write code and changes nothing in this repository. To have an agent do this work order, configure " +
  "a real provider in nightshift.toml (see docs/models.md), e.g. [providers.anthropic] with " +
  "ANTHROPIC_API_KEY set.";

/**
 * The simulator on a user's repository: every answer says it is simulated and no tool is ever
 * called, so a run on it ends without a change and nothing can land that nobody asked for.
 */
export function standInPolicy(): Policy {
  return () => ({ content: STAND_IN_REPLY });
}
