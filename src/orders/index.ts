export { readScenarioFiles } from "./holdout-files.ts";
export { Inbox } from "./inbox.ts";
export {
  checkOrderAgents,
  type OrderInput,
  OrderInputError,
  orderInputSchema,
  parseBacklog,
  parseOrder,
  readBacklog,
} from "./intake.ts";
export {
  type FoundWork,
  PerpetualSourceError,
  parseFindings,
  readCoverageReport,
  WorkFinder,
  type WorkFinderSettings,
} from "./perpetual/index.ts";
export {
  formatPlan,
  PLANNER_MARKER,
  PLANNER_SOURCE,
  type PlannedOrder,
  type PlanRequest,
  PlanUnusableError,
  parsePlan,
  planGoal,
  plannedWorkOrders,
} from "./planner.ts";
export { repositorySketch } from "./repository-sketch.ts";
