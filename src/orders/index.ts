export { Inbox } from "./inbox.ts";
export {
  type OrderInput,
  OrderInputError,
  orderInputSchema,
  parseBacklog,
  parseOrder,
  readBacklog,
} from "./intake.ts";
