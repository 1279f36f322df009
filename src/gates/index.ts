export {
  ACCEPTANCE_WRITER_MARKER,
  type AcceptanceWriterOptions,
  checkDrafts,
  type DraftedScenario,
  draftAcceptance,
  draftedScenariosSchema,
  MAX_DRAFTED_SCENARIOS,
  testConventions,
} from "./acceptance-writer.ts";
export { type CommandGateOptions, createCommandGate, createTestGate } from "./command.ts";
export { createRatchet, type RatchetContext } from "./configured.ts";
export { createDependencyGate, type DependencyGateOptions } from "./dependencies.ts";
export { changedFiles, globToRegExp } from "./diff.ts";
export {
  createDiffPolicyGate,
  DEFAULT_PROTECTED_PATHS,
  type DiffPolicyOptions,
} from "./diff-policy.ts";
export { GateError, type GateErrorCode } from "./errors.ts";
export { type FeedbackOptions, feedbackFrom } from "./feedback.ts";
export {
  createHoldoutGate,
  type HoldoutGateOptions,
  type HoldoutScenarioSource,
  type OrderScenario,
} from "./holdout.ts";
export { type RatchetResult, runGates } from "./ratchet.ts";
export {
  createReviewerGate,
  REVIEWER_MARKER,
  type ReviewerGateOptions,
  type ReviewVerdict,
  reviewVerdictSchema,
} from "./reviewer.ts";
export { createSecretScanGate } from "./secret-scan.ts";
export type {
  Gate,
  GateContext,
  GateModelEndpoint,
  GateOrder,
  GateOutcome,
  GateScope,
} from "./types.ts";
