export { type FoundWork, findingKey, foundOrder } from "./found-work.ts";
export { WorkFinder, type WorkFinderSettings } from "./finder.ts";
export {
  defectsSource,
  flakyTestsSource,
  goalsSource,
  type SourceContext,
  todoSource,
} from "./sources.ts";
