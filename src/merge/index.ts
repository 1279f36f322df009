export { PullRequestOutput } from "./pull-request-output.ts";
export { type LandingHooks, type LandingResult, SerialMergeQueue } from "./serial-queue.ts";
export {
  type DayOptions,
  type DayResult,
  type SimCandidate,
  seededRandom,
  simulateDay,
  simulatedVerdict,
} from "./simulate.ts";
export {
  type CoreAction,
  type CoreCandidate,
  type CoreOptions,
  type EjectCause,
  QueueCoreError,
  SpeculativeQueueCore,
  type StackVerdict,
  type TestBase,
} from "./speculative-core.ts";
export {
  type MergeQueue,
  SpeculativeMergeQueue,
  type SpeculativeQueueOptions,
} from "./speculative-queue.ts";
