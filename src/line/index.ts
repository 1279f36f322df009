export {
  type BudgetStop,
  Line,
  type LineParts,
  type LineSettings,
  type ModelAccess,
} from "./line.ts";
export type { LineProgress, ProgressListener } from "./progress.ts";
