export { type CommandGateOptions, createCommandGate, createTestGate } from "./command.ts";
export { GateError, type GateErrorCode } from "./errors.ts";
export { feedbackFrom } from "./feedback.ts";
export { type RatchetResult, runGates } from "./ratchet.ts";
export type { Gate, GateContext, GateOutcome } from "./types.ts";
