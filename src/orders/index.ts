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
